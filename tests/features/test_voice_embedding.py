"""Voice embeddings: the hop grid, chunking invariance, causality, gaps, and bad input, on real speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faster_whisper")

from streamline.errors import ConfigError, MediaError  # noqa: E402
from streamline.features import (  # noqa: E402
    VOICE_EMBEDDING_DIM,
    VoiceEmbedder,
    VoiceEmbeddingSettings,
    voice_embeddings_array,
)
from streamline.sources import read_audio  # noqa: E402
from streamline.types import AudioChunk  # noqa: E402

SR = 16_000
S = 1_000_000_000


@pytest.fixture(scope="module")
def speech(bundled_clip: Path) -> np.ndarray:
    """The bundled GRID clip's speech, 16 kHz mono float32 (3 s)."""
    return read_audio(bundled_clip, sample_rate_hz=SR).samples


@pytest.fixture(scope="module")
def embedder() -> VoiceEmbedder:
    with VoiceEmbedder() as e:
        yield e


def _push_in_chunks(e: VoiceEmbedder, x: np.ndarray, sizes: list[int], start_ns: int = 0) -> list:
    items, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        items += e.push(AudioChunk(start_ns + i * S // SR, x[i : i + n], SR))
        i, k = i + n, k + 1
    return items + e.flush()


def test_one_item_per_hop_on_the_session_grid(embedder: VoiceEmbedder, speech: np.ndarray) -> None:
    times, vecs, _ = voice_embeddings_array(speech, embedder=embedder)
    n_hops = -(-len(speech) // 8000)
    assert vecs.shape == (n_hops, VOICE_EMBEDDING_DIM) and vecs.dtype == np.float32
    assert times.tolist() == [k * S // 2 for k in range(n_hops)]
    assert (vecs[:-1, 768] == 1.0).all() and 0 < vecs[-1, 768] <= 1.0  # the last hop may be partial
    assert np.isfinite(vecs).all() and (vecs[:, 384:768] > 0).all()


def test_items_are_pooled_encoder_states_of_the_hop_with_its_left_context(embedder: VoiceEmbedder, speech: np.ndarray) -> None:
    _, vecs, _ = voice_embeddings_array(speech, embedder=embedder)
    # hop 4 = [2.0 s, 2.5 s): the encoder sees [0.5 s, 2.5 s), the hop is its last 25 frames (20 ms each)
    states = embedder.recognizer.encode(speech[8000:40000])[-25:]
    assert np.allclose(vecs[4, :384], states.mean(0), atol=1e-5)
    assert np.allclose(vecs[4, 384:768], states.std(0), atol=1e-5)


def test_items_do_not_depend_on_chunking(embedder: VoiceEmbedder, speech: np.ndarray) -> None:
    ref = _push_in_chunks(embedder, speech, [len(speech)])
    for sizes in ([320], [1600, 7, 16000, 333], [8000]):
        got = _push_in_chunks(embedder, speech, sizes)
        assert [g.pts_ns for g in got] == [r.pts_ns for r in ref]
        assert all(np.array_equal(g.vector(), r.vector()) for g, r in zip(got, ref))
        assert [g.speech_ratio for g in got] == [r.speech_ratio for r in ref]


def test_speech_ratio_is_the_share_of_silero_speech_windows_ending_in_the_hop(speech: np.ndarray) -> None:
    """Without the WebRTC gate, a hop's ratio is exactly the share of Silero's 32 ms windows
    (ending in the hop) at or above the onset, as silero_probabilities computes them."""
    from streamline.speech import VadSettings
    from streamline.speech.vad import silero_probabilities

    with VoiceEmbedder(VoiceEmbeddingSettings(vad=VadSettings(webrtc_gate=False))) as e:
        items = _push_in_chunks(e, speech, [1234])
    p = silero_probabilities(speech)
    window_end = np.minimum(np.arange(1, len(p) + 1) * 512, len(speech))
    for k, it in enumerate(items):
        inside = (window_end > 8000 * k) & (window_end <= min(8000 * (k + 1), len(speech)))
        assert it.speech_ratio == pytest.approx((p[inside] >= 0.5).mean())


def test_speech_ratio_on_the_bundled_clip(embedder: VoiceEmbedder, speech: np.ndarray) -> None:
    """GRID's speaker is silent for the first second and after about 2.1 s, and speaks between."""
    _, _, ratios = voice_embeddings_array(speech, embedder=embedder)
    assert ratios.dtype == np.float32 and ratios.shape == (6,)
    assert ratios[:2].tolist() == [0.0, 0.0] and (ratios[2:4] >= 0.9).all() and ratios[5] == 0.0
    assert embedder.stats.speech_items >= 3


def test_no_look_ahead(embedder: VoiceEmbedder, speech: np.ndarray) -> None:
    """What follows a hop never changes its item: the same first 2 s, then speech or silence."""
    first = _push_in_chunks(embedder, np.concatenate([speech[:32000], np.zeros(16000, np.float32)]), [4000])
    other = _push_in_chunks(embedder, np.concatenate([speech[:32000], speech[::-1][:16000]]), [4000])
    assert all(np.array_equal(a.vector(), b.vector()) for a, b in zip(first[:4], other[:4]))
    assert not np.array_equal(first[4].vector(), other[4].vector())


def test_audio_stamped_between_samples_keeps_each_item_in_its_own_hop(embedder: VoiceEmbedder, speech: np.ndarray) -> None:
    """A live source's first chunk is stamped at any nanosecond (here 0.728141 ms): every item's
    first sample is still inside its hop, and a full hop ends at or after the hop's end, so its
    watermark completes the window ending there (a nearest-sample rule put the next hop's item
    22 us before the boundary: in the earlier window, whose voice then waited a hop longer)."""
    hop = S // 2
    items = _push_in_chunks(embedder, speech, [341], start_ns=728_141)
    hops = [it.pts_ns // hop for it in items]
    assert hops == list(range(len(items)))  # one item per hop, each stamped inside its own
    for k, it in enumerate(items[:-1]):  # full hops end at their boundary, less than a sample past it
        assert (k + 1) * hop <= it.end_ns < (k + 1) * hop + S // SR


def test_a_stream_starting_off_the_grid_gives_a_partial_first_hop(embedder: VoiceEmbedder, speech: np.ndarray) -> None:
    times, vecs, _ = voice_embeddings_array(speech[:16000], start_ns=S // 4, embedder=embedder)
    # samples cover [0.25 s, 1.25 s): hops [0.25, 0.5) partial, [0.5, 1.0) full, [1.0, 1.25) partial
    assert times.tolist() == [S // 4, S // 2, S]
    assert vecs[:, 768].tolist() == pytest.approx([0.48, 1.0, 0.48])


def test_gaps_and_overlaps(embedder: VoiceEmbedder, speech: np.ndarray) -> None:
    e = embedder
    e.flush()
    gaps = e.stats.gaps
    items = e.push(AudioChunk(0, speech[:12000], SR))  # [0, 0.75 s)
    items += e.push(AudioChunk(2 * S, speech[12000:24000], SR))  # a 1.25 s hole, then [2.0, 2.75 s)
    items += e.push(AudioChunk(2 * S + 500_000_000, speech[20000:28000], SR))  # overlaps by 0.25 s
    items += e.flush()
    assert e.stats.gaps == gaps + 1
    # [0, 0.5) full; [0.5, 0.75) flushed at the gap; [2.0, 2.5) and [2.5, 3.0) after it
    assert [(it.pts_ns, it.end_ns) for it in items] == [(0, S // 2), (S // 2, 3 * S // 4), (2 * S, 5 * S // 2), (5 * S // 2, 3 * S)]


def test_silence_and_noise_are_not_speech(embedder: VoiceEmbedder) -> None:
    times, vecs, ratios = voice_embeddings_array(np.zeros(SR * 2, np.float32), embedder=embedder)
    assert len(times) == 4 and np.isfinite(vecs).all() and not ratios.any()
    noise = np.random.default_rng(0).normal(0, 0.1, SR * 2).astype(np.float32)
    _, _, ratios = voice_embeddings_array(noise, embedder=embedder)
    assert not ratios.any()


def test_too_little_audio_gives_no_item(embedder: VoiceEmbedder) -> None:
    times, vecs, _ = voice_embeddings_array(np.zeros(1000, np.float32), embedder=embedder)  # 62 ms
    assert times.shape == (0,) and vecs.shape == (0, VOICE_EMBEDDING_DIM)


@pytest.mark.parametrize(
    ("chunk", "error", "match"),
    [
        (AudioChunk(0, np.zeros(1600, np.float32), 8000), ConfigError, "8000 Hz"),
        (AudioChunk(0, np.zeros(1600, np.int16), SR), MediaError, "float32"),
        (AudioChunk(0, np.zeros((1600, 2), np.float32), SR), MediaError, "mono"),
        (AudioChunk(0, np.full(1600, np.nan, np.float32), SR), MediaError, "NaN"),
        ("not a chunk", MediaError, "AudioChunk"),
    ],
)
def test_bad_chunks_are_refused_by_name(embedder: VoiceEmbedder, chunk, error, match) -> None:
    with pytest.raises(error, match=match):
        embedder.push(chunk)


def test_settings_are_checked() -> None:
    for bad in (0.05, "0.5", None, True, float("inf")):
        with pytest.raises(ConfigError, match="hop_s"):
            VoiceEmbeddingSettings(hop_s=bad)
    for bad in (float("nan"), 0.5, -1, "1"):
        with pytest.raises(ConfigError, match="gap_tolerance_ns"):
            VoiceEmbeddingSettings(gap_tolerance_ns=bad)
    with pytest.raises(ConfigError, match="context_s"):
        VoiceEmbeddingSettings(context_s=0.2)
    with pytest.raises(ConfigError, match="context_s"):
        VoiceEmbeddingSettings(context_s=float("nan"))
    from streamline.speech import WhisperSettings

    with pytest.raises(ConfigError, match="tiny.en"):
        VoiceEmbeddingSettings(whisper=WhisperSettings(model="whisper-base"))
    with pytest.raises(ConfigError, match="VadSettings"):
        VoiceEmbeddingSettings(vad={"onset": 0.5})


def test_a_source_that_restarts_its_clock_starts_a_new_segment(embedder: VoiceEmbedder, speech: np.ndarray, caplog) -> None:
    """A chunk far (> 1 s) before the audio so far is a restart, not an overlap to drop."""
    embedder.flush()
    first = embedder.push(AudioChunk(3600 * S, speech[:16000], SR))
    with caplog.at_level("WARNING"):
        again = embedder.push(AudioChunk(0, speech[:16000], SR)) + embedder.flush()
    assert [it.pts_ns for it in first] == [3600 * S, 3600 * S + S // 2]
    assert [it.pts_ns for it in again][:2] == [0, S // 2] and "went back" in caplog.text


def test_out_of_range_samples_are_clipped_not_turned_into_nan(embedder: VoiceEmbedder) -> None:
    times, vecs, _ = voice_embeddings_array(np.full(SR, 3e38, np.float32), embedder=embedder)
    assert len(times) == 2 and np.isfinite(vecs).all()


def test_push_after_close_is_refused() -> None:
    from streamline.errors import ClosedError

    e = VoiceEmbedder()
    e.close()
    with pytest.raises(ClosedError, match="after close"):
        e.push(AudioChunk(0, np.zeros(160, np.float32), SR))


def test_speech_ratio_does_not_depend_on_audio_before_the_segment(embedder: VoiceEmbedder, speech: np.ndarray) -> None:
    """WebRTC VAD (the gate) adapts its noise model to all it hears and has no reset: a segment
    (after a gap, or the next file through a shared embedder) must get a fresh one. Quiet speech
    (-40 dB) shows it: reusing the gate turned hop 4's 0.1875 into 0.25, the speech threshold."""
    quiet = (0.01 * speech + np.random.default_rng(0).normal(0, 0.002, len(speech))).astype(np.float32)
    tone = (0.5 * np.sin(2 * np.pi * 300 * np.arange(5 * SR) / SR)).astype(np.float32)

    def fresh() -> VoiceEmbedder:
        return VoiceEmbedder(recognizer=embedder.recognizer)  # shares the model, not the VAD state

    ref = voice_embeddings_array(quiet, start_ns=60 * S, embedder=fresh())[2]
    assert ref.tolist() == pytest.approx([0.0, 0.0, 0.9333, 0.8125, 0.1875, 0.0], abs=1e-4)
    for before in (np.tile(speech, 3), tone):
        e = fresh()
        voice_embeddings_array(before, embedder=e)  # another file first
        assert voice_embeddings_array(quiet, start_ns=60 * S, embedder=e)[2].tolist() == ref.tolist()
        e = fresh()
        items = e.push(AudioChunk(0, before, SR)) + e.push(AudioChunk(60 * S, quiet, SR)) + e.flush()  # a gap
        assert np.array_equal(np.float32([it.speech_ratio for it in items if it.pts_ns >= 60 * S]), ref)


def test_an_empty_chunk_does_not_split_the_segment(embedder: VoiceEmbedder, speech: np.ndarray) -> None:
    ref = _push_in_chunks(embedder, speech, [20000])
    gaps = embedder.stats.gaps
    empty = np.zeros(0, np.float32)
    got = embedder.push(AudioChunk(-7 * S, empty, SR)) + embedder.push(AudioChunk(0, speech[:20000], SR))
    got += embedder.push(AudioChunk(5 * S, empty, SR))  # a stray timestamp without audio
    got += embedder.push(AudioChunk(20000 * S // SR, speech[20000:], SR)) + embedder.flush()
    assert embedder.stats.gaps == gaps
    assert [(g.pts_ns, g.speech_ratio) for g in got] == [(r.pts_ns, r.speech_ratio) for r in ref]
    assert all(np.array_equal(g.vector(), r.vector()) for g, r in zip(got, ref))


def test_a_hand_made_item_needs_a_speech_ratio_in_0_1() -> None:
    from streamline.features import VoiceEmbedding

    args = (0, S // 2, np.zeros(384, np.float32), np.ones(384, np.float32), 25, 1.0)
    with pytest.raises(TypeError, match="speech_ratio"):
        VoiceEmbedding(*args)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="source_id comes after it"):
        VoiceEmbedding(*args, "mic")  # code from before speech_ratio existed
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="speech_ratio"):
            VoiceEmbedding(*args, bad)
    assert VoiceEmbedding(*args, np.float32(0.5), source_id="mic").speech_ratio == 0.5


def test_speech_ratio_is_a_python_float(embedder: VoiceEmbedder, speech: np.ndarray) -> None:
    from streamline.speech import VadSettings

    with VoiceEmbedder(VoiceEmbeddingSettings(vad=VadSettings(onset=np.float32(0.5))),
                       recognizer=embedder.recognizer) as e:
        items = _push_in_chunks(e, speech, [8000])
    assert all(type(it.speech_ratio) is float for it in items)
    assert [it.speech_ratio for it in items] == [it.speech_ratio for it in _push_in_chunks(embedder, speech, [8000])]
