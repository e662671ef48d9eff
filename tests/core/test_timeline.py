"""The time model: exact PTS conversion and ingress repair."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamline import TimestampError, TimestampFlag
from streamline.timeline import DeviceClockModel, TimestampRepairer, pts_to_ns, seconds_to_ns


def test_pts_to_ns_is_exact_for_common_time_bases():
    assert pts_to_ns(3003, Fraction(1, 30000)) == 100_100_000  # NTSC frame
    assert pts_to_ns(1, Fraction(1, 3)) == 333_333_333
    assert pts_to_ns(2, Fraction(1, 3)) == 666_666_667  # rounded half away from zero
    assert pts_to_ns(-1, Fraction(1, 3)) == -333_333_333
    assert pts_to_ns(90000 * 3600 * 24, Fraction(1, 90000)) == 86_400 * 10**9  # one day, no float drift


def test_seconds_to_ns_rejects_nan():
    assert seconds_to_ns(1.5) == 1_500_000_000
    with pytest.raises(TimestampError, match="hop_s"):
        seconds_to_ns(float("nan"), name="hop_s")


def test_repairer_counts_each_anomaly():
    r = TimestampRepairer(max_gap_ns=10_000, reset_threshold_ns=1_000, jitter_ns=2)
    out = [r.repair(t, 10) for t in (0, 10, 10, 5, None, -5_000, 10**12, 10**12 + 10)]
    times = [t for t, _ in out]
    assert times == [0, 10, 11, 21, 31, 41, 51, 61]
    assert [f for _, f in out][4] == TimestampFlag.SYNTHESIZED
    assert r.stats.as_dict() == {"items": 8, "synthesized": 1, "duplicates": 1, "backwards": 1,
                                 "resets": 1, "jumps": 1}


def test_one_duplicate_moves_only_that_item():
    ms = 1_000_000
    r = TimestampRepairer()
    times = [r.repair(t * ms, 40 * ms)[0] // ms for t in (0, 40, 40, 80, 120, 160)]
    assert times == [0, 40, 40, 80, 120, 160]  # the duplicate sits 1 ns after 40 ms
    assert r.stats.duplicates == 1 and r.stats.repaired == 1


def test_a_splice_stepping_back_is_one_repair_and_keeps_spacing():
    ms = 1_000_000
    r = TimestampRepairer()
    raw = [0, 40, 80, 120, 160, 200] + [t - 760 for t in (800, 840, 880, 920)]  # second file restarts
    out = [r.repair(t * ms, 40 * ms)[0] for t in raw]
    assert r.stats.backwards == 1 and r.stats.repaired == 1
    assert [b - a for a, b in zip(out, out[1:])] == [40 * ms] * (len(raw) - 1)


def test_repairer_keeps_real_gaps():
    r = TimestampRepairer(max_gap_ns=1_000_000)
    assert r.repair(0, 10)[0] == 0
    assert r.repair(500_000, 10) == (500_000, TimestampFlag.NONE)  # a hole, not an anomaly
    assert r.stats.repaired == 0


@given(st.lists(st.one_of(st.none(), st.integers(-10**12, 10**12)), max_size=200))
def test_repairer_output_is_strictly_increasing_for_any_input(raw):
    r = TimestampRepairer()
    times = [r.repair(t, 1000)[0] for t in raw]
    assert all(b > a for a, b in zip(times, times[1:]))


def test_device_clock_model_maps_onto_the_session_clock_and_tracks_drift():
    import numpy as np

    model = DeviceClockModel(window=256)
    rng = np.random.default_rng(0)
    # A device clock 100 ppm fast, at a wall-clock epoch; items arrive 2 ms + exponential jitter late.
    epoch = 1_700_000_000 * 10**9
    errors = []
    for i in range(6000):  # 60 s at 100 Hz
        session_true = i * 10_000_000
        device = epoch + int(session_true * (1 + 100e-6))
        arrival = session_true + 2_000_000 + int(rng.exponential(1_500_000))
        errors.append(model.map(device, arrival) - session_true)
    # The fixed 2 ms delivery latency is unobservable; everything else is tracked.
    late = np.array(errors[1000:]) - 2_000_000
    assert np.abs(late).max() < 1_000_000
    assert model.drift_ppm == pytest.approx(-100, abs=20)
