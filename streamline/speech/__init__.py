"""Speech: voice activity detection and streaming speech recognition.

* :func:`detect_speech` / :class:`VoiceActivityDetector`: Silero VAD behind a
  WebRTC gate, with hysteresis; speech segments ``[start_ns, end_ns)``.
* :func:`transcribe` / :class:`StreamingTranscriber`: VAD-gated streaming
  Whisper (faster-whisper) with LocalAgreement-2; timed :class:`~streamline.Word` items.
* :class:`WhisperRecognizer`: a loaded Whisper model (tiny.en by default,
  multilingual base as an option), shareable between transcribers.

Importing this package is cheap: faster-whisper, onnxruntime and webrtcvad are
imported when a detector or recogniser is created (extra ``asr``).
See docs/speech.md.
"""

from __future__ import annotations

from .asr import AsrSettings, AsrStats, StreamingTranscriber, transcribe, word_error_rate
from .vad import VadSettings, VadStats, VoiceActivityDetector, detect_speech
from .whisper import Hypothesis, HypothesisWord, WhisperRecognizer, WhisperSettings, whisper_base_dir

__all__ = [
    "AsrSettings",
    "AsrStats",
    "StreamingTranscriber",
    "transcribe",
    "word_error_rate",
    "VadSettings",
    "VadStats",
    "VoiceActivityDetector",
    "detect_speech",
    "WhisperSettings",
    "WhisperRecognizer",
    "Hypothesis",
    "HypothesisWord",
    "whisper_base_dir",
]
