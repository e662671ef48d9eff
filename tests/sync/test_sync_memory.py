"""A one-hour synthetic session: memory stays flat, buffers hold only open windows.

Streams as fusion sees them: face features at 30 fps (52 blendshapes), voice
features at 100 Hz (8 values), words (intervals, about two a second), pushed
as arrays one second at a time, polled after every second like a live run.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np

from streamline.sync import StreamSpec, Synchronizer, WindowSpec

S = 1_000_000_000
MS = 1_000_000
SESSION_S = 3600


def test_one_hour_session_has_flat_memory():
    rng = np.random.default_rng(7)
    sync = Synchronizer(WindowSpec(2.0, 0.5), [
        StreamSpec("face", grid_hz=15, max_age_s=0.1, keep_items=False),
        StreamSpec("voice", grid_hz=50, resample="linear", max_age_s=0.03, keep_items=False),
        StreamSpec("words", keep_items=False),
    ])
    face_t = (np.arange(30) * S) // 30
    voice_t = np.arange(100) * 10 * MS
    face_v = rng.random((30, 52), dtype=np.float32)
    voice_v = rng.random((100, 8), dtype=np.float32)
    n_windows = n_gaps = 0
    face_counts: set[int] = set()
    checkpoints: dict[int, int] = {}

    def look(w) -> int:
        face = w["face"]
        assert face.grid_values.shape == (30, 52) and w["voice"].grid_values.shape == (100, 8)
        if face.coverage == 1.0:
            face_counts.add(face.count)
            return 0
        return 1

    tracemalloc.start()
    try:
        for sec in range(SESSION_S):
            base = sec * S
            if sec % 60 != 59:
                sync.push_array("face", base + face_t, face_v)
            else:                                               # the face leaves the view one second a minute:
                sync.advance_watermark("face", base + S)        # the tracker says so with a watermark
            sync.push_array("voice", base + voice_t, voice_v)
            starts = base + np.array([100, 600], np.int64) * MS
            sync.push_array("words", starts, rng.random((2, 1), dtype=np.float32), end_ns=starts + 350 * MS)
            for w in sync.poll():
                n_windows += 1
                n_gaps += look(w)
            if sec in (600, SESSION_S - 1):
                gc.collect()
                checkpoints[sec] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    for name in ("face", "voice", "words"):
        sync.end_stream(name)
    for w in sync.poll():
        n_windows += 1
        n_gaps += look(w)
    growth_mb = (checkpoints[SESSION_S - 1] - checkpoints[600]) / 2**20
    assert growth_mb < 0.25, f"memory grew by {growth_mb:.3f} MB over 50 minutes"
    assert n_windows == 2 * SESSION_S                          # windows starting before 3599.99 s
    assert face_counts == {60}                                 # 2 s of 30 fps in every full window
    # each missing second (59, 119, ... 3599) shows in the 5 windows that overlap it
    assert n_gaps == 5 * (SESSION_S // 60)
    stats = sync.stats.streams
    # voice holds what open windows need (~2.5 s behind the slowest watermark, plus one pushed
    # second) and at most 8 hops (4 s) of emitted data between evictions: <= 351 + 400
    assert stats["voice"].max_buffered <= 751 and stats["words"].max_buffered <= 16
