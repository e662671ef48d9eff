"""Voice features: definitions against references, streaming invariance, timing, real speech.

Frame grid of one segment (hop 10 ms, frames centred on it, zeros outside)::

    samples   |0 ........................................ n)
    frames    ^0   ^1   ^2   ...                    ^ceil(n/160)-1
    t (ms)    0    10   20                           (centre times)
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features_naive import SR, mixed_signal, naive_features, vowel
from streamline.errors import ConfigError, MediaError
from streamline.features import (
    VOICE_FEATURE_DIM,
    VOICE_FEATURE_NAMES,
    VoiceFeatureExtractor,
    VoiceFrame,
    VoiceSettings,
    stack_voice_frames,
    voice_features,
    voice_features_array,
)
from streamline.features import _voice_kernels as kernels
from streamline.types import AudioChunk

NS_PER_SAMPLE = 1_000_000_000 // SR  # 62_500 ns at 16 kHz

#: Under NUMBA_DISABLE_JIT=1 (the coverage run) a frame takes ~40 ms in pure Python: run only the
#: tests that exercise the kernels against their references, on short signals.
needs_jit = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="too slow without the JIT; kernels covered by the reference tests")


def chunks_of(samples: np.ndarray, sizes: list[int] | int, *, pts_ns: int = 0, source_id: str = "mic") -> list[AudioChunk]:
    """Cut ``samples`` into contiguous AudioChunks of the given sizes (cycled)."""
    out = []
    i = 0
    k = 0
    sizes = [sizes] if isinstance(sizes, int) else sizes
    while i < len(samples):
        n = sizes[k % len(sizes)]
        out.append(AudioChunk(pts_ns + i * NS_PER_SAMPLE, samples[i : i + n], SR, source_id))
        i += n
        k += 1
    return out


def stream(samples: np.ndarray, sizes: list[int] | int, **kw: object) -> tuple[np.ndarray, np.ndarray]:
    ext = VoiceFeatureExtractor()
    frames: list[VoiceFrame] = []
    for chunk in chunks_of(samples, sizes, **kw):
        frames.extend(ext.push(chunk))
    frames.extend(ext.flush())
    return stack_voice_frames(frames)


# --------------------------------------------------------------------------- layout


def test_feature_layout_is_documented_and_stable():
    assert VOICE_FEATURE_DIM == 57 == len(set(VOICE_FEATURE_NAMES))
    assert VOICE_FEATURE_NAMES[:4] == ("log_energy_db", "f0_hz", "voicing_prob", "voiced")
    assert VOICE_FEATURE_NAMES[4] == "log_mel_00" and VOICE_FEATURE_NAMES[43] == "log_mel_39"
    assert VOICE_FEATURE_NAMES[44] == "mfcc_00" and VOICE_FEATURE_NAMES[-1] == "mfcc_12"
    s = VoiceSettings()
    assert (s.hop_samples, s.window_samples, s.hop_ns) == (160, 400, 10_000_000)


# --------------------------------------------------------------------------- references


def test_mel_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ours = kernels.mel_filterbank(16000, 512, 40, 20.0, 8000.0)
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, fmin=20.0, fmax=8000.0)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)


def test_dct_matches_scipy():
    scipy_fft = pytest.importorskip("scipy.fft")
    x = np.random.default_rng(1).standard_normal(40)
    np.testing.assert_allclose(kernels.dct_matrix(13, 40) @ x, scipy_fft.dct(x, type=2, norm="ortho")[:13], atol=1e-12)


def test_kernel_matches_naive_reference_on_mixed_signal():
    x = mixed_signal(3)
    _, feats = voice_features_array(x, SR)
    dips, ref = naive_features(x)
    assert feats.shape == ref.shape == (math.ceil(len(x) / 160), 57)
    # voicing decisions agree except where the dip sits on the threshold
    clear = np.abs(dips - 0.3) > 1e-6
    np.testing.assert_array_equal(feats[clear, 3], ref[clear, 3])
    both = clear & (ref[:, 3] > 0)
    np.testing.assert_allclose(feats[both, 1], ref[both, 1], rtol=1e-5)
    np.testing.assert_allclose(feats[:, 0], ref[:, 0], atol=1e-3)
    np.testing.assert_allclose(feats[:, 2], ref[:, 2], atol=1e-5)
    np.testing.assert_allclose(feats[:, 4:], ref[:, 4:], atol=2e-3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    f0=st.floats(70.0, 450.0),
    amp=st.floats(0.001, 0.9),
    noise=st.floats(0.0, 0.2),
    n=st.integers(1, 2000),
    seed=st.integers(0, 2**16),
)
def test_kernel_matches_naive_reference_random(f0, amp, noise, n, seed):
    rng = np.random.default_rng(seed)
    x = (vowel(f0, n / SR + 0.01, amplitude=amp, seed=seed)[:n] + noise * rng.standard_normal(n)).astype(np.float32)
    _, feats = voice_features_array(x, SR)
    dips, ref = naive_features(x)
    clear = np.abs(dips - 0.3) > 1e-6
    np.testing.assert_array_equal(feats[clear, 3], ref[clear, 3])
    both = clear & (ref[:, 3] > 0)
    np.testing.assert_allclose(feats[both, 1], ref[both, 1], rtol=1e-5)
    np.testing.assert_allclose(feats[:, 0], ref[:, 0], atol=1e-3)
    np.testing.assert_allclose(feats[:, 4:], ref[:, 4:], atol=2e-3)


# --------------------------------------------------------------------------- values on generated audio


@pytest.mark.parametrize("f0_hz", [120.0, 220.0])
def test_vowel_f0_within_2_percent_and_voiced(f0_hz):
    x = vowel(f0_hz, 1.0, amplitude=0.3)
    times, feats = voice_features_array(x, SR)
    inner = feats[5:-5]  # frames whose windows lie wholly inside the signal
    assert np.all(inner[:, 3] == 1.0)
    assert np.all(np.abs(inner[:, 1] / f0_hz - 1) < 0.02)
    assert np.all(inner[:, 2] > 0.9)
    rms_db = 10 * np.log10(np.mean(x.astype(np.float64) ** 2))
    assert np.all(np.abs(inner[:, 0] - rms_db) < 1.0)
    frame = VoiceFrame(int(times[50]), feats[50])
    assert frame.voiced and abs(frame.f0_hz - f0_hz) < 0.02 * f0_hz and frame.log_energy_db == feats[50, 0]
    assert frame.log_mel_db.shape == (40,) and frame.mfcc.shape == (13,)


@needs_jit
def test_vowel_spectrum_peaks_near_its_formant():
    x = vowel(120.0, 0.5, formants_hz=(700.0, 1220.0, 2600.0))
    _, feats = voice_features_array(x, SR)
    mel = feats[20, 4:44]
    fb = kernels.mel_filterbank(16000, 512, 40, 20.0, 8000.0)
    centres = np.linspace(0, 8000, 257) @ fb.T / fb.sum(axis=1)
    assert abs(centres[int(np.argmax(mel))] - 700.0) < 150.0


def test_silence_is_unvoiced_at_the_floor():
    _, feats = voice_features_array(np.zeros(SR, dtype=np.float32), SR)
    assert np.all(feats[:, 0] == -100.0)
    assert np.all(feats[:, 1:4] == 0.0)
    assert np.all(feats[:, 4:44] == -100.0)


@needs_jit
@pytest.mark.parametrize("level", [0.1, 1e-4])
def test_white_noise_is_unvoiced(level):
    x = (level * np.random.default_rng(7).standard_normal(2 * SR)).astype(np.float32)
    _, feats = voice_features_array(x, SR)
    assert np.mean(feats[:, 3]) < 0.02
    if level < 1e-3:
        assert np.all(feats[5:-5, 0] < -70)


@needs_jit
def test_louder_is_higher_energy_by_the_gain():
    x = vowel(150.0, 0.5, amplitude=0.05)
    _, quiet = voice_features_array(x, SR)
    _, loud = voice_features_array(x * 10, SR)
    np.testing.assert_allclose(loud[5:-5, 0] - quiet[5:-5, 0], 20.0, atol=1e-3)
    np.testing.assert_allclose(loud[5:-5, 1], quiet[5:-5, 1], rtol=1e-5)


# --------------------------------------------------------------------------- streaming


@needs_jit
@pytest.mark.parametrize("sizes", [320, 1600, 16000, [1, 7, 159, 160, 161, 3333]])
def test_chunking_gives_identical_frames(sizes):
    x = mixed_signal(0)
    ref_t, ref_f = voice_features_array(x, SR, start_ns=5_000_000_000)
    t, f = stream(x, sizes, pts_ns=5_000_000_000)
    np.testing.assert_array_equal(t, ref_t)
    np.testing.assert_array_equal(f, ref_f)  # bitwise


@needs_jit
def test_frame_times_are_centres_from_pts_and_sample_counts():
    x = vowel(200.0, 0.25)
    t, _ = stream(x, 512, pts_ns=1_234_567_000)
    assert t[0] == 1_234_567_000
    assert np.all(np.diff(t) == 10_000_000)
    assert len(t) == math.ceil(len(x) / 160)


@needs_jit
def test_frames_come_out_with_bounded_delay_and_bounded_memory():
    ext = VoiceFeatureExtractor()
    x = mixed_signal(1)
    received = 0
    for chunk in chunks_of(x, 320):
        frames = ext.push(chunk)
        received += chunk.num_samples
        if frames:
            # the newest frame's centre trails the newest sample by at most the look-ahead + one hop
            lag_samples = received - (frames[-1].pts_ns // NS_PER_SAMPLE)
            assert lag_samples <= 334 + 160
        assert ext.buffered_samples <= 333 + 334 + 160 + 320


@needs_jit
def test_gap_starts_a_new_segment_and_no_frame_falls_in_the_hole():
    a = vowel(120.0, 0.5)
    b = vowel(220.0, 0.33)
    hole_ns = 700_000_000
    b_pts = len(a) * NS_PER_SAMPLE + hole_ns
    ext = VoiceFeatureExtractor()
    frames = []
    for chunk in chunks_of(a, 480) + chunks_of(b, 480, pts_ns=b_pts):
        frames.extend(ext.push(chunk))
    frames.extend(ext.flush())
    t, f = stack_voice_frames(frames)
    ta, fa = voice_features_array(a, SR)
    tb, fb = voice_features_array(b, SR, start_ns=b_pts)
    np.testing.assert_array_equal(t, np.concatenate([ta, tb]))
    np.testing.assert_array_equal(f, np.concatenate([fa, fb]))
    end_a = len(a) * NS_PER_SAMPLE
    assert not np.any((t >= end_a) & (t < b_pts))
    assert ext.stats.gaps == 1 and ext.stats.segments == 2


@needs_jit
def test_small_timestamp_jitter_is_not_a_gap():
    x = vowel(150.0, 0.5)
    chunks = chunks_of(x, 800)
    jitter = [0] + [300_000 if i % 2 else -200_000 for i in range(1, len(chunks))]  # the first chunk anchors the segment
    jittered = [AudioChunk(c.pts_ns + j, c.samples, SR) for c, j in zip(chunks, jitter)]
    ext = VoiceFeatureExtractor()
    frames = [fr for c in jittered for fr in ext.push(c)] + ext.flush()
    t, f = stack_voice_frames(frames)
    ref_t, ref_f = voice_features_array(x, SR)
    np.testing.assert_array_equal(t, ref_t)
    np.testing.assert_array_equal(f, ref_f)
    assert ext.stats.gaps == 0 and ext.stats.overlap_samples == 0


@needs_jit
def test_overlapping_chunk_is_trimmed_and_times_stay_increasing():
    x = vowel(150.0, 0.6)
    first = AudioChunk(0, x[:4800], SR)
    # starts 100 ms before the end of the first chunk, repeating those samples
    second = AudioChunk(3200 * NS_PER_SAMPLE, x[3200:], SR)
    ext = VoiceFeatureExtractor()
    frames = ext.push(first) + ext.push(second) + ext.flush()
    t, f = stack_voice_frames(frames)
    ref_t, ref_f = voice_features_array(x, SR)
    assert ext.stats.overlap_samples == 1600
    np.testing.assert_array_equal(t, ref_t)
    np.testing.assert_array_equal(f, ref_f)


@needs_jit
def test_flush_then_continue_starts_fresh_segment():
    x = vowel(150.0, 0.2)
    ext = VoiceFeatureExtractor()
    out1 = ext.push(AudioChunk(0, x, SR)) + ext.flush()
    out2 = ext.push(AudioChunk(10_000_000_000, x, SR)) + ext.flush()
    assert len(out1) == len(out2) == math.ceil(len(x) / 160)
    assert out2[0].pts_ns == 10_000_000_000
    np.testing.assert_array_equal(stack_voice_frames(out1)[1], stack_voice_frames(out2)[1])


@needs_jit
def test_operator_matches_batch_and_keeps_state_per_subscription():
    x = mixed_signal(2)
    obs = reactivex.from_iterable(chunks_of(x, 1600, source_id="audio:0")).pipe(voice_features())
    for _ in range(2):  # two subscriptions, independent state
        got: list[VoiceFrame] = []
        done = []
        obs.subscribe(got.append, lambda e: done.append(e), lambda: done.append("ok"))
        assert done == ["ok"]
        t, f = stack_voice_frames(got)
        ref_t, ref_f = voice_features_array(x, SR)
        np.testing.assert_array_equal(t, ref_t)
        np.testing.assert_array_equal(f, ref_f)
        assert {fr.source_id for fr in got} == {"audio:0"}


def test_operator_reports_bad_chunk_as_on_error():
    good = AudioChunk(0, np.zeros(1600, dtype=np.float32), SR)
    bad = AudioChunk(100_000_000, np.zeros(4410, dtype=np.float32), 44100)
    errors: list[Exception] = []
    reactivex.from_iterable([good, bad]).pipe(voice_features()).subscribe(
        lambda _: None, errors.append, lambda: errors.append("completed")
    )
    assert len(errors) == 1 and isinstance(errors[0], ConfigError) and "44100" in str(errors[0])


# --------------------------------------------------------------------------- validation


def test_bad_input_raises_clear_errors():
    ext = VoiceFeatureExtractor()
    with pytest.raises(ConfigError, match="44100 Hz.*16000 Hz"):
        ext.push(AudioChunk(0, np.zeros(441, dtype=np.float32), 44100, "mic"))
    with pytest.raises(MediaError, match="float32.*float64"):
        ext.push(AudioChunk(0, np.zeros(160), SR))
    with pytest.raises(MediaError, match="mono"):
        ext.push(AudioChunk(0, np.zeros((160, 2), dtype=np.float32), SR))
    with pytest.raises(MediaError, match="NaN"):
        ext.push(AudioChunk(0, np.full(160, np.nan, dtype=np.float32), SR))
    with pytest.raises(MediaError, match="AudioChunk"):
        ext.push(np.zeros(160, dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(MediaError, match="int16"):
        voice_features_array(np.zeros(160, dtype=np.int16), SR)
    with pytest.raises(ConfigError, match="8000"):
        voice_features_array(np.zeros(160, dtype=np.float32), 8000)
    with pytest.raises(ConfigError, match="f0_min_hz"):
        VoiceSettings(f0_min_hz=600.0)
    with pytest.raises(ConfigError, match="sample_rate_hz"):
        VoiceSettings(sample_rate_hz=22050)
    with pytest.raises(ConfigError, match="VoiceSettings"):
        voice_features("fast")  # type: ignore[arg-type]
    # float64 arrays are fine for the batch function (converted to float32 as the stream would)
    t, f = voice_features_array(np.zeros(320), SR)
    assert t.dtype == np.int64 and f.dtype == np.float32 and f.shape == (2, VOICE_FEATURE_DIM)
    # empty input: no frames, correct shapes
    t, f = voice_features_array(np.zeros(0, dtype=np.float32), SR)
    assert t.shape == (0,) and f.shape == (0, VOICE_FEATURE_DIM)


@needs_jit
def test_other_sample_rate_by_setting():
    s = VoiceSettings(sample_rate_hz=8000)
    x = vowel(150.0, 0.5, sr=8000)
    t, f = voice_features_array(x, 8000, settings=s)
    assert np.all(np.diff(t) == 10_000_000)
    assert np.all(np.abs(f[5:-5, 1] / 150.0 - 1) < 0.02)


# --------------------------------------------------------------------------- real speech


@needs_jit
def test_jfk_f0_agrees_with_librosa_yin(shared_data):
    librosa = pytest.importorskip("librosa")
    from streamline.sources import read_audio

    x = read_audio(shared_data / "asr_reference" / "jfk.flac").samples
    _, feats = voice_features_array(x, SR)
    voiced = feats[:, 3] > 0.5
    assert 0.3 < voiced.mean() < 0.7  # speech: roughly half the frames voiced
    ref = librosa.yin(x.astype(np.float64), fmin=60, fmax=500, sr=SR, frame_length=1024,
                      hop_length=160, center=True, trough_threshold=0.15)
    n = min(len(ref), len(feats))
    ratio = feats[:n, 1][voiced[:n]] / ref[:n][voiced[:n]]
    assert np.median(np.abs(ratio - 1)) < 0.01
    assert np.mean(np.abs(ratio - 1) < 0.05) > 0.85


def _energy_and_f0(path) -> tuple[float, float]:
    from streamline.sources import read_audio

    _, feats = voice_features_array(read_audio(path).samples, SR)
    mean_power_db = 10 * np.log10(np.mean(10 ** (feats[:, 0].astype(np.float64) / 10)))
    return float(mean_power_db), float(np.median(feats[feats[:, 3] > 0.5, 1]))


@needs_jit
@pytest.mark.parametrize("actor", ["01", "02", "03", "04"])
def test_ravdess_angry_is_louder_and_higher_than_sad(shared_data, actor):
    """Same actor, same sentence ("Dogs are sitting by the door"), strong intensity, 48 kHz WAV resampled."""
    folder = shared_data / "ravdess" / "audio" / f"Actor_{actor}"
    sad_e, sad_f0 = _energy_and_f0(folder / f"03-01-04-02-02-01-{actor}.wav")
    angry_e, angry_f0 = _energy_and_f0(folder / f"03-01-05-02-02-01-{actor}.wav")
    assert angry_e > sad_e + 2.0
    assert angry_f0 > sad_f0


@needs_jit
def test_ravdess_angry_vs_sad_across_all_training_actors(shared_data):
    """Strong-intensity angry vs sad takes of both sentences for every actor in ravdess_speech16k."""
    root = shared_data / "ravdess_speech16k"
    actors = sorted(p.name[-2:] for p in root.glob("Actor_*"))
    louder = higher = pairs = 0
    for actor in actors:
        for stmt in ("01", "02"):
            sad = root / f"Actor_{actor}" / f"03-01-04-02-{stmt}-01-{actor}.flac"
            angry = root / f"Actor_{actor}" / f"03-01-05-02-{stmt}-01-{actor}.flac"
            if not (sad.exists() and angry.exists()):
                continue
            (se, sf), (ae, af) = _energy_and_f0(sad), _energy_and_f0(angry)
            pairs += 1
            louder += ae > se
            higher += af > sf
    assert pairs >= 30
    assert louder / pairs >= 0.95
    assert higher / pairs >= 0.75


# --------------------------------------------------------------------------- through the sources


@needs_jit
def test_bundled_clip_through_open_media_equals_read_audio(bundled_clip):
    """The GRID clip (MP2 at 44.1 kHz stereo, resampled by the source) streamed as the source chunks it."""
    import threading

    from streamline.sources import open_media, read_audio

    whole = read_audio(bundled_clip)
    ref_t, ref_f = voice_features_array(whole.samples, SR, start_ns=whole.pts_ns)
    got: list[VoiceFrame] = []
    done = threading.Event()
    errors: list[Exception] = []
    with open_media(bundled_clip, video=False) as src:
        src.audio.pipe(voice_features()).subscribe(got.append, lambda e: (errors.append(e), done.set()), done.set)
        assert done.wait(60)
    assert not errors
    t, f = stack_voice_frames(got)
    np.testing.assert_array_equal(t, ref_t)
    np.testing.assert_array_equal(f, ref_f)
    assert 2.9e9 < t[-1] - t[0] < 3.1e9
    voiced = f[:, 3] > 0.5
    assert 0.15 < voiced.mean() < 0.8  # a spoken GRID command
    assert 80 < np.median(f[voiced, 1]) < 300
