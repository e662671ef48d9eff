"""streamline: streaming analysis of synchronized audio, video and transcript.

The public API is small and imports only the core dependencies (numpy, numba,
PyAV, reactivex); heavier parts (speech, face, fusion) are imported lazily on
first use and name the extra to install when missing.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .errors import (
    ClosedError,
    ConfigError,
    CorruptMediaError,
    DeviceError,
    MediaError,
    MediaNotFoundError,
    MissingExtraError,
    ModelNotFoundError,
    NoMediaStreamsError,
    StreamlineError,
    TimestampError,
)
from .types import AudioChunk, MediaInfo, SpeechSegment, StreamInfo, TimestampFlag, VideoFrame, Word

# Public names defined in submodules that import heavier code; resolved on first access.
_LAZY: dict[str, str] = {
    "open_media": "streamline.sources",
    "probe": "streamline.sources",
    "read_audio": "streamline.sources",
    "camera": "streamline.sources",
    "microphone": "streamline.sources",
    "synthetic": "streamline.sources",
    "MediaSource": "streamline.sources",
    "Handoff": "streamline.flow",
    "OverflowPolicy": "streamline.flow",
    "handoff": "streamline.flow",
    "voice_features": "streamline.features",
    "voice_features_array": "streamline.features",
    "voice_embeddings": "streamline.features",
    "VoiceEmbedder": "streamline.features",
    "text_features": "streamline.features",
    "embed_texts": "streamline.features",
    "synchronize": "streamline.sync",
    "Synchronizer": "streamline.sync",
    "WindowSpec": "streamline.sync",
    "StreamSpec": "streamline.sync",
    "Watermark": "streamline.sync",
    "AlignedWindow": "streamline.sync",
    "StreamSlice": "streamline.sync",
    "LateItem": "streamline.sync",
    "transcribe": "streamline.speech",
    "detect_speech": "streamline.speech",
    "StreamingTranscriber": "streamline.speech",
    "VoiceActivityDetector": "streamline.speech",
    "EmotionEstimate": "streamline.fusion",
    "EmotionRecognizer": "streamline.fusion",
    "estimate_emotions": "streamline.fusion",
    "Pipeline": "streamline.pipeline",
    "PipelineSettings": "streamline.pipeline",
    "PipelineModels": "streamline.pipeline",
    "analyze_faces": "streamline.face",
    "FaceAnalyzer": "streamline.face",
    "FaceSettings": "streamline.face",
    "quiet_native_stderr": "streamline._quiet",
}

__all__ = [
    "__version__",
    "AudioChunk",
    "ClosedError",
    "ConfigError",
    "CorruptMediaError",
    "DeviceError",
    "MediaError",
    "MediaInfo",
    "MediaNotFoundError",
    "MissingExtraError",
    "ModelNotFoundError",
    "NoMediaStreamsError",
    "SpeechSegment",
    "StreamInfo",
    "StreamlineError",
    "TimestampError",
    "TimestampFlag",
    "VideoFrame",
    "Word",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'streamline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
