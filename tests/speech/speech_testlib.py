"""Helpers for the speech tests: feeding audio in chunks, generated signals, WER."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streamline.sources import read_audio
from streamline.speech.asr import StreamingTranscriber, word_error_rate
from streamline.types import AudioChunk, SpeechSegment, Word

RATE = 16_000
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")


def load_16k(path: Path) -> np.ndarray:
    """A file's audio as 16 kHz mono float32 (through the source/resampler path)."""
    return read_audio(path, sample_rate_hz=RATE).samples


def chunks(samples: np.ndarray, chunk_ms: int, *, start_ns: int = 0) -> list[AudioChunk]:
    """Cut samples into AudioChunks of ``chunk_ms`` with exact PTS."""
    n = RATE * chunk_ms // 1000
    return [AudioChunk(pts_ns=start_ns + i * 1_000_000_000 // RATE, samples=samples[i:i + n], sample_rate_hz=RATE)
            for i in range(0, len(samples), n)]


def run_asr(asr: StreamingTranscriber, samples: np.ndarray, chunk_ms: int) -> tuple[list[Word], list[SpeechSegment]]:
    """Feed everything, finish; return (all emitted words, VAD segments)."""
    words: list[Word] = []
    for chunk in chunks(samples, chunk_ms):
        words.extend(asr.push(chunk))
    words.extend(asr.finish())
    return words, asr.take_segments()


def committed(words: list[Word]) -> list[Word]:
    return [w for w in words if w.committed]


wer = word_error_rate  # the library's WER (case and punctuation ignored)


# ---------------------------------------------------------------- generated signals
def white_noise(seconds: float, rms: float = 0.1, seed: int = 1) -> np.ndarray:
    return (rms * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def pink_noise(seconds: float, rms: float = 0.1, seed: int = 2) -> np.ndarray:
    n = int(seconds * RATE)
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum = rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs))
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0
    x = np.fft.irfft(spectrum, n)
    return (rms * x / np.std(x)).astype(np.float32)


def _note(freq: float, seconds: float, kind: str) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    attack = np.minimum(1.0, t * 30)
    if kind == "piano":
        return sum(np.sin(2 * np.pi * freq * m * t) / m for m in (1, 2, 3)) * attack * np.exp(-t * 2)
    if kind == "organ":
        return sum(np.sin(2 * np.pi * freq * m * t) / m for m in (1, 2, 3, 4, 6, 8)) * attack
    # "lead": a sawtooth with 5.5 Hz vibrato, the most voice-like of the three
    phase = 2 * np.pi * freq * t + 0.3 * np.sin(2 * np.pi * 5.5 * t)
    return sum(np.sin(k * phase) / k for k in range(1, 15)) * attack * np.exp(-t * 2)


def chords(seconds: float = 10.0) -> np.ndarray:
    """Piano-like triads (C, Am, F, G), 0.5 s each."""
    progression = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    parts = []
    while sum(len(p) for p in parts) < seconds * RATE:
        for chord in progression:
            parts.append(sum(_note(f, 0.5, "piano") for f in chord))
    x = np.concatenate(parts)[: int(seconds * RATE)]
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def melody(kind: str, seconds: float = 8.0, base_hz: float = 220.0, seed: int = 3) -> np.ndarray:
    """Random notes of a major scale, 0.4 s each, as ``piano``, ``organ`` or ``lead``."""
    rng = np.random.default_rng(seed)
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    notes = [_note(base_hz * 2 ** (scale[rng.integers(0, 8)] / 12), 0.4, kind) for _ in range(int(seconds / 0.4))]
    x = np.concatenate(notes)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def drums(seconds: float = 8.0, seed: int = 4) -> np.ndarray:
    """A hi-hat-like noise burst and a 60 Hz kick every 250 ms."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE))
    k = np.arange(3000)
    for i in range(0, len(out) - 5000, 4000):
        out[i:i + 3000] += rng.standard_normal(3000) * np.exp(-k / 300)
        out[i + 2000:i + 5000] += np.sin(2 * np.pi * 60 * k / RATE) * np.exp(-k / 800)
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def band_with_drums(seconds: float = 8.0) -> np.ndarray:
    """Vibrato lead melody over drums: music that Silero's scores put near speech."""
    x = melody("lead", seconds) + 0.5 * drums(seconds)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)
