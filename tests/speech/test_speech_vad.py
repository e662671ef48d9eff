"""Voice activity detection: Silero decision behind a WebRTC gate, with hysteresis.

Timeline of the bundled GRID clip (3.0 s, "bin blue at f two now"):

    0 s        0.99 s                        2.1 s          3.0 s
    |  silence  |###### speech ##############|   silence     |
             [ segment, widened by speech_pad_ms = 0.3 s  )
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import reactivex
from reactivex import operators as ops

from speech_testlib import (
    RATE,
    band_with_drums,
    chords,
    chunks,
    drums,
    load_16k,
    melody,
    pink_noise,
    white_noise,
)
from streamline.errors import ClosedError, ConfigError
from streamline.speech import VadSettings, VoiceActivityDetector, detect_speech
from streamline.speech._stream import SampleTimeline
from streamline.speech.vad import silero_probabilities
from streamline.types import AudioChunk, SpeechSegment


def segments_of(samples: np.ndarray, chunk_ms: int, settings: VadSettings | None = None, *,
                start_ns: int = 0) -> tuple[list[SpeechSegment], VoiceActivityDetector]:
    vad = VoiceActivityDetector(settings)
    out: list[SpeechSegment] = []
    for chunk in chunks(samples, chunk_ms, start_ns=start_ns):
        out.extend(vad.push(chunk))
    out.extend(vad.flush())
    return out, vad


def test_incremental_silero_equals_faster_whisper_batch(bundled_16k):
    from faster_whisper.vad import get_vad_model

    n = len(bundled_16k) // 512 * 512
    batch = get_vad_model()(bundled_16k[:n].copy())  # it writes into its input
    incremental = silero_probabilities(bundled_16k[:n])
    # faster-whisper's batch call zeroes the last 64 samples of its input in place
    # (its context array is a view), so its last window differs: compare the rest
    np.testing.assert_allclose(incremental[:-1], batch[:-1], atol=1e-5)
    assert batch.max() > 0.9  # there is speech in the clip


def test_bundled_clip_has_one_segment_around_the_speech(bundled_16k):
    end_of_clip = len(bundled_16k) * 1_000_000_000 // RATE
    segments, vad = segments_of(bundled_16k, 100, VadSettings(min_silence_ms=500))
    assert len(segments) == 1
    seg = segments[0]
    # speech energy of "bin ... now" lies between about 0.95 s and 2.1 s (+/- the 0.3 s pad)
    assert 0.55e9 <= seg.start_ns <= 1.0e9
    assert 2.0e9 <= seg.end_ns <= 2.6e9
    assert 0.8 < seg.probability <= 1.0
    assert vad.stats.segments == 1 and vad.stats.rtf < 0.1
    # with the default 1.2 s closing silence the clip ends first: closed at the end of the audio
    segments, _ = segments_of(bundled_16k, 100)
    assert [(s.start_ns, s.end_ns) for s in segments] == [(seg.start_ns, end_of_clip)]


@pytest.mark.parametrize("chunk_ms", [20, 100, 1000, 7000])
def test_segments_do_not_depend_on_chunk_size(bundled_16k, chunk_ms):
    reference, _ = segments_of(bundled_16k, 32)
    got, _ = segments_of(bundled_16k, chunk_ms)
    assert got == reference


def test_odd_chunk_sizes_and_last_partial_frame(bundled_16k):
    # 333 samples is neither a WebRTC frame (480) nor a Silero window (512);
    # cut the audio so the last frame is partial and must be padded
    audio = bundled_16k[: 2 * RATE + 123]
    vad = VoiceActivityDetector()
    out = []
    for i in range(0, len(audio), 333):
        out.extend(vad.push(AudioChunk(i * 1_000_000_000 // RATE, audio[i:i + 333], RATE)))
    out.extend(vad.flush())
    assert len(out) == 1
    assert out[0].end_ns == len(audio) * 1_000_000_000 // RATE  # still speaking at the cut: closed at the end
    assert vad.stats.webrtc_frames == -(-len(audio) // 480)


def test_segments_sit_on_the_session_timeline(bundled_16k):
    base, _ = segments_of(bundled_16k, 100)
    shifted, _ = segments_of(bundled_16k, 100, start_ns=5_000_000_000)
    assert [(s.start_ns - 5_000_000_000, s.end_ns - 5_000_000_000) for s in shifted] == [
        (s.start_ns, s.end_ns) for s in base]


@pytest.mark.parametrize("name,signal", [
    ("silence", lambda: np.zeros(5 * RATE, dtype=np.float32)),
    ("low noise", lambda: white_noise(5, rms=0.003)),
    ("white noise", lambda: white_noise(10)),
    ("pink noise", lambda: pink_noise(10)),
    ("chords", lambda: chords(10)),
    ("piano melody", lambda: melody("piano", base_hz=440)),
    ("organ melody", lambda: melody("organ", base_hz=130)),
    ("drums", lambda: drums()),
])
def test_noise_and_music_are_not_speech(name, signal):
    segments, vad = segments_of(signal(), 100)
    assert segments == [], f"{name} was called speech"


def test_webrtc_alone_calls_noise_speech_which_is_why_it_only_gates():
    segments, vad = segments_of(white_noise(5), 100)
    assert vad.stats.webrtc_speech_frames > 0.9 * vad.stats.webrtc_frames
    assert segments == []


def test_the_gate_skips_silero_on_silence_and_changes_nothing_on_speech(bundled_16k):
    quiet = np.zeros(5 * RATE, dtype=np.float32)
    _, gated = segments_of(quiet, 100)
    assert gated.stats.silero_windows == 0 and gated.stats.windows > 100
    audio = np.concatenate([quiet, bundled_16k, quiet])
    with_gate, _ = segments_of(audio, 100)
    without_gate, _ = segments_of(audio, 100, VadSettings(webrtc_gate=False))
    assert len(with_gate) == len(without_gate) == 1
    assert abs(with_gate[0].start_ns - without_gate[0].start_ns) <= 64_000_000
    assert abs(with_gate[0].end_ns - without_gate[0].end_ns) <= 64_000_000


def test_hysteresis_merges_short_pauses_and_splits_long_ones(bundled_16k):
    speech = bundled_16k[int(0.9 * RATE):int(2.2 * RATE)]
    short = np.zeros(int(0.2 * RATE), dtype=np.float32)
    long = np.zeros(int(1.5 * RATE), dtype=np.float32)
    merged, _ = segments_of(np.concatenate([long, speech, short, speech, long]), 100)
    assert len(merged) == 1
    split, _ = segments_of(np.concatenate([long, speech, long, speech, long]), 100)
    assert len(split) == 2
    assert split[0].end_ns <= split[1].start_ns


def test_a_click_shorter_than_min_speech_is_ignored(bundled_16k):
    burst = bundled_16k[int(1.2 * RATE):int(1.35 * RATE)]  # 150 ms of a vowel
    silence = np.zeros(RATE, dtype=np.float32)
    segments, _ = segments_of(np.concatenate([silence, burst, silence]), 100, VadSettings(min_speech_ms=250))
    assert segments == []


def test_gaps_between_chunks_are_silence_or_break_the_run(bundled_16k):
    speech = bundled_16k[int(0.8 * RATE):int(2.3 * RATE)]
    vad = VoiceActivityDetector()
    out = vad.push(AudioChunk(0, speech, RATE))
    # a 5 s hole in the timestamps: the open segment ends where the audio stopped
    later_ns = 5_000_000_000 + len(speech) * 1_000_000_000 // RATE
    out += vad.push(AudioChunk(later_ns, speech, RATE))
    out += vad.flush()
    assert len(out) == 2
    assert out[0].end_ns <= len(speech) * 1_000_000_000 // RATE
    assert out[1].start_ns >= later_ns


def test_sample_timeline_fills_small_gaps_and_drops_overlaps():
    timeline = SampleTimeline(RATE)
    ones = np.ones(160, dtype=np.float32)
    assert [len(p.samples) for p in timeline.admit(0, ones)] == [160]
    pieces = timeline.admit(20_000_000, ones)  # 10 ms late: 160 zeros first
    assert [len(p.samples) for p in pieces] == [160, 160] and not pieces[0].samples.any()
    pieces = timeline.admit(25_000_000, ones)  # 5 ms early: 80 samples overlap
    assert [len(p.samples) for p in pieces] == [80]
    assert timeline.time_ns(timeline.position) == 35_000_000
    pieces = timeline.admit(3_000_000_000, ones)  # far away: the run breaks
    assert pieces[0].samples is None and timeline.breaks == 1
    assert timeline.time_ns(timeline.position - 160) == 3_000_000_000


def test_bad_chunks_and_settings_raise_clear_errors():
    vad = VoiceActivityDetector()
    with pytest.raises(ConfigError, match="16000 Hz"):
        vad.push(AudioChunk(0, np.zeros(441, dtype=np.float32), 44_100))
    with pytest.raises(ConfigError, match="mono"):
        vad.push(AudioChunk(0, np.zeros((160, 2), dtype=np.float32), RATE))
    with pytest.raises(ConfigError, match="float"):
        vad.push(AudioChunk(0, np.zeros(160, dtype=np.int16), RATE))
    vad.close()
    with pytest.raises(ClosedError):
        vad.push(AudioChunk(0, np.zeros(160, dtype=np.float32), RATE))
    with pytest.raises(ConfigError):
        VadSettings(onset=0.3, offset=0.5)
    with pytest.raises(ConfigError):
        VadSettings(webrtc_frame_ms=25)
    with pytest.raises(ConfigError):
        VadSettings(min_silence_ms=-1)
    for bad in ({"onset": "0.5"}, {"offset": float("nan")}, {"gate_hangover_ms": float("nan")},
                {"webrtc_mode": 1.0}, {"webrtc_mode": True}, {"webrtc_frame_ms": 30.0},
                {"gate_warmup_windows": 2.5}, {"min_speech_ms": None}, {"webrtc_gate": "no"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            VadSettings(**bad)
    assert VadSettings(onset=np.float32(0.5), min_speech_ms=np.int64(250)).onset == 0.5  # numpy scalars are fine


def test_a_new_run_does_not_depend_on_the_audio_before_it(bundled_16k):
    """WebRTC VAD adapts to what it hears and has no reset: after a flush (end of a run, or a
    gap) the detector starts from scratch, so a run's probabilities are a fresh detector's."""
    from streamline.speech.vad import VadStats, _VadCore

    quiet = (0.01 * bundled_16k + np.random.default_rng(0).normal(0, 0.002, len(bundled_16k))).astype(np.float32)
    fresh = _VadCore(VadSettings(), VadStats())
    expected = fresh.process(quiet) + fresh.flush()
    used = _VadCore(VadSettings(), VadStats())
    used.process(np.tile(bundled_16k, 3))
    used.flush()
    used.restart_at(0)
    got = used.process(quiet) + used.flush()
    assert [(end, p) for end, p, _ in got] == [(end, p) for end, p, _ in expected]


def test_detect_speech_operator_matches_the_push_api(bundled_16k):
    audio = np.concatenate([bundled_16k, np.zeros(RATE, dtype=np.float32), bundled_16k])
    expected, _ = segments_of(audio, 100)
    got: list[SpeechSegment] = []
    done = threading.Event()
    reactivex.from_iterable(chunks(audio, 100)).pipe(detect_speech()).subscribe(
        got.append, lambda e: done.set(), done.set)
    assert done.wait(30)
    assert got == expected and len(got) == 2


def test_detect_speech_operator_reports_bad_input_as_on_error():
    errors: list[Exception] = []
    reactivex.from_iterable([AudioChunk(0, np.zeros(800, dtype=np.float32), 8000)]).pipe(
        detect_speech(), ops.to_list()).subscribe(on_error=errors.append)
    assert len(errors) == 1 and isinstance(errors[0], ConfigError)


@pytest.mark.parametrize("name,signal", [("vibrato lead", lambda: melody("lead")),
                                         ("lead over drums", band_with_drums)])
def test_voice_like_music_is_flagged_at_most_while_silero_adapts(name, signal):
    # A sawtooth lead with vibrato is the most voice-like music: Silero scores its
    # first notes above the onset threshold until its recurrent state has heard
    # enough of it (well under 2 s), then calls it non-speech for good. The
    # recogniser's guards take care of that stretch (test_speech_asr.py).
    audio = np.concatenate([np.zeros(RATE, dtype=np.float32), signal()])
    probs = silero_probabilities(audio)
    assert probs.max() > 0.5  # this really is a hard case
    segments, _ = segments_of(audio, 100)
    assert len(segments) <= 1
    assert sum(s.end_ns - s.start_ns for s in segments) < 2_000_000_000
    assert all(s.end_ns < 3_000_000_000 for s in segments)  # only at the music's onset


@pytest.mark.shared_data
def test_jfk_phrases(shared_data):
    audio = load_16k(shared_data / "asr_reference" / "jfk.flac")
    # the default closing silence (1.2 s) keeps the whole passage one utterance ...
    segments, _ = segments_of(audio, 20)
    assert len(segments) == 1
    assert segments[0].start_ns <= 0.1e9 and 10.3e9 <= segments[0].end_ns <= 11.0e9
    # ... a shorter one splits it at its four pauses
    segments, _ = segments_of(audio, 20, VadSettings(min_silence_ms=500))
    assert len(segments) == 4
    starts = [s.start_ns / 1e9 for s in segments]
    # phrases begin at about 0.3, 3.3, 5.4 and 8.2 s (minus the 0.3 s pad)
    assert np.allclose(starts, [0.0, 3.0, 5.1, 7.9], atol=0.25)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["noisy_audio_meeting_snr_20.wav", "noisy_audio_cafeter_snr_0.wav"])
def test_speech_in_noise_is_found(shared_data, name):
    audio = load_16k(shared_data / "tricky" / name)
    segments, _ = segments_of(audio, 100)
    assert segments
    assert sum(s.end_ns - s.start_ns for s in segments) > 1e9
