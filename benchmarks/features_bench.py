"""Benchmark of the voice embeddings and the voice and text features.

Voice embeddings (the fusion model's voice input): the same speech as 20 ms chunks
through :class:`VoiceEmbedder` (one Whisper tiny.en encoder call per 0.5 s hop, one
thread): real-time factor and time per item. Voice features: 60 s of speech (JFK tiled from ../shared/data, or a generated vowel/noise
signal when that is absent), as one array (the training-cache path), as 20 ms
chunks through :class:`VoiceFeatureExtractor` (the live path) and through the
reactive operator. Text: all-mpnet-base-v2 (layers 6 and 8) on distinct MELD lines (or generated
sentences) one at a time as the stream does, and in batches of 32 as the
training caches do; VADER valence per line.

Run: ``python benchmarks/features_bench.py [--seconds 60] [--sentences 200]``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from streamline.features import (  # noqa: E402
    VoiceFeatureExtractor,
    embed_texts,
    text_valence,
    voice_features,
    voice_features_array,
    warmup_voice_kernels,
)
from streamline.types import AudioChunk  # noqa: E402

SHARED = Path(os.environ.get("STREAMLINE_SHARED_DATA", REPO.parent / "shared" / "data"))
SR = 16000


def speech(seconds: float) -> tuple[np.ndarray, str]:
    jfk = SHARED / "asr_reference" / "jfk.flac"
    n = int(seconds * SR)
    if jfk.exists():
        from streamline.sources import read_audio

        x = read_audio(jfk).samples
        return np.resize(x, n).astype(np.float32), "jfk.flac tiled"
    rng = np.random.default_rng(0)
    t = np.arange(n) / SR
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(h * phase) / h for h in range(1, 20)) * (np.sin(2 * np.pi * 2 * t) > 0)
    x = 0.2 * x / np.max(np.abs(x)) + 0.01 * rng.standard_normal(n)
    return x.astype(np.float32), "generated harmonic bursts"


def sentences(count: int) -> tuple[list[str], str]:
    meld = SHARED / "meld" / "dev_sent_emo.csv"
    if meld.exists():
        with open(meld, encoding="utf-8", newline="") as handle:
            lines = list(dict.fromkeys(r["Utterance"] for r in csv.DictReader(handle)))
        return lines[:count], "MELD dev"
    words = "we were on a break and you know it could I be any more sorry about the coffee".split()
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, size=8)) + f" {i}" for i in range(count)], "generated"


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio length for the voice features")
    parser.add_argument("--sentences", type=int, default=200, help="distinct sentences for the text features")
    args = parser.parse_args()

    t0 = time.perf_counter()
    warmup_voice_kernels()
    warmup_s = time.perf_counter() - t0
    x, audio_src = speech(args.seconds)
    dur = len(x) / SR

    batch_s = best_of(lambda: voice_features_array(x, SR), 3)

    def live() -> None:
        ext = VoiceFeatureExtractor()
        step = SR // 50
        for i in range(0, len(x), step):
            ext.push(AudioChunk(i * 62_500, x[i : i + step], SR))
        ext.flush()

    stream_s = best_of(live, 3)

    import reactivex

    chunks = [AudioChunk(i * 62_500, x[i : i + SR // 50], SR) for i in range(0, len(x), SR // 50)]

    def rx() -> None:
        n = [0]
        reactivex.from_iterable(chunks).pipe(voice_features()).subscribe(lambda _: n.__setitem__(0, n[0] + 1))

    rx_s = best_of(rx, 3)
    print(f"voice features on {dur:.0f} s of audio ({audio_src}); kernel warm-up {warmup_s:.2f} s")
    print(f"  batch array        : {batch_s * 1e3:8.1f} ms  rtf {batch_s / dur:.4f}  ({batch_s / dur * 1e3:.2f} ms per s of audio)")
    print(f"  stream, 20 ms chunks: {stream_s * 1e3:8.1f} ms  rtf {stream_s / dur:.4f}")
    print(f"  reactive operator  : {rx_s * 1e3:8.1f} ms  rtf {rx_s / dur:.4f}")

    from streamline.features import VoiceEmbedder

    with VoiceEmbedder() as embedder:
        step = SR // 50
        items = []
        for i in range(0, len(x), step):
            items += embedder.push(AudioChunk(i * 62_500, x[i : i + step], SR))
        items += embedder.flush()
        emb = embedder.stats
    print(f"voice embeddings on {dur:.0f} s: {len(items)} items, encoder {emb.compute_s:.2f} s, "
          f"rtf {emb.real_time_factor():.4f}, {emb.compute_s / max(1, emb.items) * 1e3:.1f} ms per 0.5 s hop")

    texts, text_src = sentences(args.sentences)
    import torch

    from streamline.features import TextEncoder, TextSettings

    t0 = time.perf_counter()
    enc = TextEncoder(TextSettings(cache_size=4 * len(texts)))
    load_s = time.perf_counter() - t0
    with enc:
        enc.embed(["warm up the model"])
        t0 = time.perf_counter()
        for text in texts:
            enc.embed([text])
        single_s = time.perf_counter() - t0
        enc2 = TextEncoder(TextSettings(cache_size=4 * len(texts)))
        with enc2:
            enc2.embed(["warm up the model"])
            t0 = time.perf_counter()
            enc2.embed(texts)
            batch_text_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        enc.embed(texts)
        cached_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for text in texts:
        text_valence(text)
    valence_s = time.perf_counter() - t0
    # the default encoder path used by training caches
    embed_texts(texts[:2])
    n = len(texts)
    print(f"text features on {n} distinct sentences ({text_src}); torch threads {torch.get_num_threads()}; model load {load_s:.2f} s")
    print(f"  embed one at a time: {single_s / n * 1e3:6.2f} ms per sentence")
    print(f"  embed in batches   : {batch_text_s / n * 1e3:6.2f} ms per sentence")
    print(f"  cached             : {cached_s / n * 1e3:6.3f} ms per sentence")
    print(f"  VADER valence      : {valence_s / n * 1e3:6.3f} ms per sentence")

    result = {
        "audio_s": round(dur, 2),
        "voice_warmup_s": round(warmup_s, 3),
        "voice_batch_rtf": round(batch_s / dur, 5),
        "voice_batch_ms_per_audio_s": round(batch_s / dur * 1e3, 3),
        "voice_stream_20ms_rtf": round(stream_s / dur, 5),
        "voice_stream_20ms_ms_per_audio_s": round(stream_s / dur * 1e3, 3),
        "voice_operator_20ms_rtf": round(rx_s / dur, 5),
        "voice_embedding_rtf": round(emb.real_time_factor(), 5),
        "voice_embedding_ms_per_hop": round(emb.compute_s / max(1, emb.items) * 1e3, 3),
        "text_sentences": n,
        "text_model_load_s": round(load_s, 3),
        "text_embed_ms_per_sentence": round(single_s / n * 1e3, 3),
        "text_embed_batched_ms_per_sentence": round(batch_text_s / n * 1e3, 3),
        "text_embed_cached_ms_per_sentence": round(cached_s / n * 1e3, 4),
        "text_valence_ms_per_sentence": round(valence_s / n * 1e3, 4),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
