"""The Python API end to end on the bundled GRID clip (3 s, "bin blue at f two now"), real models.

Windows of 2 s every 0.5 s over the clip; the synchronizer emits every window that
starts before the end of the data::

    t (s):  0    0.5   1.0   1.5   2.0   2.5   3.0   3.5   4.0   4.5
    est 0:  [-----------------------)
    est 1:       [-----------------------)
    est 2:             [-----------------------)
    est 3:                   [-----------------------)
    est 4:                         [-----------------------)
    est 5:                               [-----------------------)
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import reactivex
from reactivex import operators as ops

from pipeline_media import thread_names
from streamline.errors import ClosedError, ConfigError, NoMediaStreamsError
from streamline.features import VoiceEmbeddingSettings
from streamline.fusion import CLASSES
from streamline.pipeline import Pipeline, PipelineSettings, Stages
from streamline.types import SpeechSegment, Word

S = 1_000_000_000
GRID_WORDS = {"bin", "blue", "at", "f", "two", "2", "now", "f2", "bimblu", "bimblue"}


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def test_estimates_every_hop_cover_the_clip(grid_run):
    ests = grid_run.iterator
    assert not grid_run.errors
    starts = [e.start_ns for e in ests]
    assert starts == [k * S // 2 for k in range(len(ests))]          # one per hop, from 0
    assert all(e.end_ns - e.start_ns == 2 * S for e in ests)
    assert ests[-1].start_ns < 3 * S <= ests[-1].end_ns               # the last window reaches past the clip
    assert len(ests) == 6
    for e in ests:
        assert e.probs.shape == (len(CLASSES),)
        assert float(e.probs.sum()) == pytest.approx(1.0, abs=1e-4)
        assert e.confidence == pytest.approx(float(e.probs.max()), abs=1e-6)
        assert -1.0 <= e.valence <= 1.0 and -1.0 <= e.arousal <= 1.0
        assert set(e.contributions) == set(e.modalities)
        assert sum(e.contributions.values()) == pytest.approx(1.0, abs=1e-3)


def test_every_modality_is_present_where_the_clip_has_it(grid_run):
    ests = grid_run.iterator
    with_face = [e for e in ests if "face" in e.modalities]
    assert len(with_face) >= 0.8 * len(ests)
    # speech lies between ~1.0 and ~2.1 s: the windows holding it have voice, the last one,
    # [2.5 s, 4.5 s), holds only silence, which is not voice
    assert all("voice" in e.modalities for e in ests[:4]) and "voice" not in ests[-1].modalities
    # words are spoken between ~1.0 and ~2.1 s: the windows overlapping them carry text
    assert any("text" in e.modalities for e in ests)
    m = grid_run.metrics
    assert m["faces_present"] >= 0.9 * m["faces"] and m["faces"] >= 40          # 15 fps over 3 s


def test_words_and_segments_come_with_the_estimates(grid_run):
    words = [x for x in grid_run.events if isinstance(x, Word) and x.committed]
    assert words, "no committed word"
    assert {_norm(w.text) for w in words} & GRID_WORDS
    assert all(0.5 * S <= w.start_ns <= w.end_ns <= 3 * S for w in words)
    segments = [x for x in grid_run.events if isinstance(x, SpeechSegment)]
    assert len(segments) == 1
    assert segments[0].start_ns < words[0].start_ns and words[-1].end_ns <= segments[0].end_ns


def test_the_four_ways_of_consuming_give_the_same_estimates(grid_run):
    def key(ests):
        return [(e.start_ns, e.end_ns, tuple(np.round(e.probs, 6)), e.modalities) for e in ests]

    reference = key(grid_run.iterator)
    assert len(reference) == 6
    assert key(grid_run.observable) == reference
    assert key(grid_run.async_iterator) == reference
    assert key(grid_run.callbacks) == reference
    assert sorted(grid_run.completed) == ["callbacks", "rx"]


def test_close_releases_every_thread_and_the_landmarker(grid_run):
    assert grid_run.analyzers_closed == [True]
    leftover = {name for _, name in grid_run.threads_after - grid_run.threads_before}
    assert not leftover, f"threads left running: {leftover}"


def test_metrics_describe_the_run(grid_run):
    m = grid_run.metrics
    assert m["mode"] == "file" and m["estimates"] == 6
    assert m["media_s"] == pytest.approx(3.0, abs=0.1)
    assert 0 < m["rtf"] < 10
    for stage in ("face", "voice", "asr", "text", "fusion", "delivery"):
        s = m["stages"][stage]
        assert s["count"] > 0 and 0 <= s["p50_ms"] <= s["p95_ms"] <= s["max_ms"]
    assert m["stages"]["face"]["count"] == m["faces"]
    for queue in ("face", "voice", "asr", "fusion", "events", "source_video", "source_audio"):
        q = m["queues"][queue]
        assert q["dropped"] == 0 and q["depth"] == 0 and q["max_depth"] >= 1      # files never drop
        assert q["delivered"] == q["put"] > 0                                       # items only, not the end marker
    assert m["sync"]["windows"] == 6 and m["sync"]["late"] == 0
    assert m["word_lag"]["p95_s"] >= m["word_lag"]["p50_s"] >= 0
    assert m["estimate_latency"] is None                                        # only measured live
    with_voice = sum("voice" in e.modalities for e in grid_run.iterator)
    assert m["modality_coverage"]["voice"] == pytest.approx(with_voice / 6, abs=1e-4) and 4 <= with_voice <= 5


def test_a_file_is_analysed_the_same_way_every_time(models, bundled_clip, grid_run):
    with Pipeline.from_file(bundled_clip, models=models) as pipeline:
        again = pipeline.run(timeout_s=120)
        with pytest.raises(ClosedError, match="runs once"):  # not a silent empty list
            pipeline.run(timeout_s=10)
    with pytest.raises(ClosedError, match="after close"):
        pipeline.run(timeout_s=10)
    assert [e.start_ns for e in again] == [e.start_ns for e in grid_run.iterator]
    for a, b in zip(again, grid_run.iterator):
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)
        assert a.modalities == b.modalities


def test_audio_only_file_gives_voice_and_text_estimates(models, made_media):
    with Pipeline.from_file(made_media["audio_only"], models=models) as pipeline:
        assert pipeline.info.modalities == ("voice", "text")
        assert "face" in pipeline.info.absent and "video" in pipeline.info.absent["face"]
        assert any("face modality absent" in n for n in pipeline.info.notes())
        ests = pipeline.run(timeout_s=120)
    assert len(ests) == 6
    assert not any("face" in e.modalities for e in ests)
    assert all("voice" in e.modalities for e in ests[:4]) and ests[-1].modalities == ()  # silence at the end
    assert any("text" in e.modalities for e in ests)


def test_video_only_file_gives_face_estimates(models, made_media):
    with Pipeline.from_file(made_media["video_only"], models=models) as pipeline:
        assert pipeline.info.modalities == ("face",)
        assert set(pipeline.info.absent) == {"voice", "text"}
        ests = pipeline.run(timeout_s=120)
    assert len(ests) == 6
    assert all(e.modalities == ("face",) for e in ests[:5])
    assert all(e.contributions == {"face": pytest.approx(1.0)} for e in ests[:5])


@pytest.mark.shared_data
def test_mead_style_clip_without_audio(models, shared_data):
    clip = next(iter(sorted((shared_data / "mead" / "style_clips").glob("*.mp4"))))
    with Pipeline.from_file(clip, models=models) as pipeline:
        assert "voice" in pipeline.info.absent
        ests = pipeline.run(timeout_s=120)
    assert len(ests) >= 4
    assert sum("face" in e.modalities for e in ests) >= 0.8 * len(ests)


def test_a_modality_the_file_lacks_is_refused_with_its_name(models, made_media):
    settings = PipelineSettings(modalities=("face",))
    with pytest.raises(NoMediaStreamsError, match="grid_audio_only.wav.*no decodable video.*face"):
        Pipeline.from_file(made_media["audio_only"], settings, models=models)


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="unknown modality"):
        PipelineSettings(modalities=("face", "smell"))
    with pytest.raises(ConfigError, match="hop_s"):
        PipelineSettings(hop_s=3.0)
    assert PipelineSettings(modalities="text,face").modalities == ("face", "text")
    for bad in (None, b"face", ["face", 3]):
        with pytest.raises(ConfigError, match="modalities must be"):
            PipelineSettings(modalities=bad)
    # windows hold whole face grid points (15 Hz) and whole voice hops (0.5 s by default)
    with pytest.raises(ConfigError, match="face modality"):
        PipelineSettings(length_s=1.5)
    with pytest.raises(ConfigError, match="length_s=1.2 does not suit the voice modality"):
        PipelineSettings(length_s=1.2, modalities="voice")
    with pytest.raises(ConfigError, match="hop_s=0.25 does not suit the voice modality"):
        PipelineSettings(hop_s=0.25)
    with pytest.raises(ConfigError, match="does not suit the voice modality"):
        PipelineSettings(hop_s=1e-7, modalities="voice")  # rounds to zero hops: not a whole multiple
    assert PipelineSettings(length_s=1.5, modalities="voice,text").length_s == 1.5
    assert PipelineSettings(hop_s=0.25, voice=VoiceEmbeddingSettings(hop_s=0.25)).hop_s == 0.25
    assert PipelineSettings(hop_s=0.25, modalities="face,text").hop_s == 0.25


def test_any_observables_and_a_replaced_stage(models, bundled_clip, grid_run):
    """Frames and chunks the user brings (cold Observables), the voice stage replaced by a user operator."""
    from streamline.features import voice_embeddings
    from streamline.sources import open_media

    frames, chunks = [], []
    with open_media(bundled_clip) as media:
        done = threading.Barrier(3, timeout=30)
        media.video.subscribe(frames.append, on_completed=done.wait)
        media.audio.subscribe(chunks.append, on_completed=done.wait)
        done.wait()
    seen = []
    stages = Stages(voice=lambda audio: audio.pipe(ops.do_action(seen.append), voice_embeddings()))
    with Pipeline(video=reactivex.from_iterable(frames), audio=reactivex.from_iterable(chunks),
                  stages=stages, models=models) as pipeline:
        ests = pipeline.run(timeout_s=120)
    assert len(seen) == len(chunks)
    assert [e.start_ns for e in ests] == [e.start_ns for e in grid_run.iterator]
    assert all("voice" in e.modalities and "face" in e.modalities for e in ests[:4])


def test_a_failing_callback_is_detached_and_the_rest_go_on(models, bundled_clip):
    got, errors = [], []

    def bad(est):
        raise RuntimeError("UI crashed")

    with Pipeline.from_file(bundled_clip, models=models) as pipeline:
        pipeline.subscribe(bad, on_error=errors.append)
        pipeline.subscribe(got.append)
        ests = pipeline.run(timeout_s=120)
    assert len(errors) == 1 and "UI crashed" in str(errors[0])
    assert len(got) == len(ests) == 6


def test_close_in_the_middle_stops_everything(models, made_media):
    before = thread_names()
    pipeline = Pipeline.from_file(made_media["long"], models=models)
    it = pipeline.iter_events()
    first = None
    while first is None:
        first = it.get(60)
    started = time.perf_counter()
    pipeline.close()
    assert time.perf_counter() - started < 10
    assert all(a.closed for a in pipeline.face_analyzers)
    rest = list(it)                                   # the iterator ends (completed by close)
    assert all(not hasattr(x, "probs") or x.end_ns <= 18 * S for x in rest)
    time.sleep(0.1)
    assert not {name for _, name in thread_names() - before}
    pipeline.close()                                  # idempotent
    with pytest.raises(ClosedError):
        pipeline.start()


def test_errors_end_every_consumer(models, tmp_path):
    """A file whose data turns out undecodable: the error reaches the iterator, typed."""
    from streamline.errors import MediaError, StreamlineError

    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    with pytest.raises(StreamlineError):
        with Pipeline.from_file(bad, models=models) as pipeline:
            pipeline.run(timeout_s=60)
    missing = tmp_path / "nope.mp4"
    with pytest.raises(MediaError, match="nope.mp4"):
        Pipeline.from_file(missing, models=models)


def test_close_from_inside_a_callback(models, made_media):
    before = thread_names()
    pipeline = Pipeline.from_file(made_media["long"], models=models)
    got = []

    def on_estimate(est):
        got.append(est)
        pipeline.close()                                  # from the delivery thread itself

    pipeline.subscribe(on_estimate)
    pipeline.start()
    assert pipeline.wait(60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and thread_names() - before:
        time.sleep(0.05)
    assert not {name for _, name in thread_names() - before}
    assert len(got) == 1


def test_realtime_replay_uses_the_live_path(models, bundled_clip, grid_run):
    """``realtime=True``: paced like a device, lateness budgets, latency measured."""
    started = time.monotonic()
    with Pipeline.from_file(bundled_clip, models=models, realtime=True) as pipeline:
        ests = pipeline.run(timeout_s=60)
        m = pipeline.metrics()
    assert time.monotonic() - started >= 2.5                      # the 3 s clip took (about) 3 s
    assert [e.start_ns for e in ests] == [e.start_ns for e in grid_run.iterator]
    assert m["mode"] == "live"
    lat = m["estimate_latency"]
    assert lat["total"]["count"] >= 2                             # windows ending by 2.0 and 2.5 s (later ones are flushed)
    assert lat["excluding_words"]["p50_ms"] <= lat["total"]["p50_ms"] + 1e-6
    assert all(e.modalities for e in ests[:4])


def test_speech_and_voice_embeddings_share_one_whisper_with_two_workers(models, bundled_clip):
    """One copy of tiny.en serves both stages; an encode beside a decode gives what it gives alone."""
    from streamline.sources import read_audio

    assert models.whisper is models.voice_encoder and models.whisper.settings.workers == 2
    audio = read_audio(bundled_clip, sample_rate_hz=16000).samples
    alone = models.voice_encoder.encode(audio[:32000])
    words_alone = [w.text for w in models.whisper.decode(audio).words]
    results: dict[str, object] = {}
    decoding = threading.Thread(target=lambda: results.__setitem__("words", models.whisper.decode(audio).words))
    decoding.start()
    beside = [models.voice_encoder.encode(audio[:32000]) for _ in range(5)]
    decoding.join(60)
    assert [w.text for w in results["words"]] == words_alone
    assert all(np.allclose(b, alone, atol=1e-4) for b in beside)
