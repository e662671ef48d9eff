"""Speech benchmark: VAD and ASR real-time factors, committed-word latency, word timing.

Figures (the last line printed is one JSON object with all of them):

* ``vad_rtf``: compute seconds of :class:`VoiceActivityDetector` per second of audio
  (the 60 s talking-head clip, pushed in 20 ms chunks).
* ``asr_rtf``: Whisper decode seconds per second of audio in the real-time replay below
  (the streaming recogniser re-decodes the open utterance every ``step_ms`` of audio).
  ``asr_cpu_s_per_audio_s`` is the same in process CPU seconds (all CTranslate2
  threads): it changes little when other programs compete for the cores, so it is the
  figure to compare between noisy runs (wall RTF ~ CPU figure / threads on idle cores).
* ``word_latency_p50_s`` / ``word_latency_p95_s``: real-time replay with **wall-clock
  pacing**: a feeder thread releases each 20 ms chunk when the wall clock reaches its
  end (as a microphone would), through :func:`streamline.speech.transcribe` (its own
  thread behind a bounded hand-off). For every committed word, latency = the wall time
  it was emitted minus the wall time its last sample was released
  (``emitted - (t0 + word.end_s)``). This includes the wait for agreement, the VAD's
  closing silence, queueing and decoding.
* ``word_boundary_error_median_ms``: GRID ``id2_vcd_swwp2s.mpg`` against its official
  alignment ``swwp2s.align`` (units of 1/25000 s): median over matched words of
  |start - reference start| and |end - reference end|.
* ``jfk_wer``: word error rate on ``asr_reference/jfk.flac`` (extra).

Usage::

    python benchmarks/speech_bench.py [--shared-data ../shared/data] [--seconds 60] [--threads 2]

Needs ``../shared/data`` (third-party media). Runs about ``--seconds`` plus ~30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from streamline.speech import (  # noqa: E402
    AsrSettings,
    StreamingTranscriber,
    VoiceActivityDetector,
    WhisperRecognizer,
    WhisperSettings,
    transcribe,
    word_error_rate,
)
from streamline.sources import read_audio  # noqa: E402
from streamline.speech.asr import normalize_word  # noqa: E402
from streamline.types import AudioChunk, Word  # noqa: E402

RATE = 16_000
NS = 1_000_000_000
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")


def chunks(samples: np.ndarray, chunk_ms: int) -> list[AudioChunk]:
    n = RATE * chunk_ms // 1000
    return [AudioChunk(i * NS // RATE, samples[i:i + n], RATE) for i in range(0, len(samples), n)]


def offline_words(asr: StreamingTranscriber, samples: np.ndarray) -> list[Word]:
    out: list[Word] = []
    for chunk in chunks(samples, 100):
        out.extend(asr.push(chunk))
    out.extend(asr.finish())
    return [w for w in out if w.committed]


def vad_rtf(samples: np.ndarray) -> float:
    with VoiceActivityDetector() as vad:
        for chunk in chunks(samples, 20):
            vad.push(chunk)
        vad.flush()
        return vad.stats.rtf


def realtime_replay(samples: np.ndarray, settings: AsrSettings, recognizer: WhisperRecognizer) -> dict:
    """Feed 20 ms chunks at wall-clock pace; measure when committed words come out."""
    import reactivex

    subject: reactivex.subject.Subject = reactivex.subject.Subject()
    emitted: list[tuple[float, Word]] = []
    stats_box: list = []
    done = threading.Event()
    errors: list[Exception] = []
    handoff_stats: list = []

    from streamline import flow

    original = flow.Handoff.__init__

    def spy(self, *args, **kwargs):  # noqa: ANN001 - keep a handle on the operator's queue stats
        original(self, *args, **kwargs)
        handoff_stats.append(self.stats)

    flow.Handoff.__init__ = spy  # type: ignore[method-assign]
    try:
        t0_box = [0.0]
        subject.pipe(transcribe(settings, recognizer=recognizer, on_stats=stats_box.append)).subscribe(
            lambda w: emitted.append((time.perf_counter() - t0_box[0], w)) if w.committed else None,
            lambda e: (errors.append(e), done.set()),
            done.set,
        )
    finally:
        flow.Handoff.__init__ = original  # type: ignore[method-assign]
    items = chunks(samples, 20)
    t0 = time.perf_counter()
    t0_box[0] = t0
    for chunk in items:
        release = (chunk.end_ns) / NS
        delay = t0 + release - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        subject.on_next(chunk)
    subject.on_completed()
    done.wait(120)
    if errors:
        raise errors[0]
    latencies = [t - w.end_ns / NS for t, w in emitted]
    stats = stats_box[0]
    return {
        "words": len(emitted),
        "latencies": latencies,
        "asr_rtf": stats.rtf,
        "asr_cpu_s_per_audio_s": stats.decode_cpu_s / stats.audio_s if stats.audio_s else 0.0,
        "decodes": stats.decodes,
        "full_window_retries": stats.full_window_retries,
        "audio_lag_p95_s": stats.lag_percentile_s(95),
        "max_queue_depth": handoff_stats[0].max_depth if handoff_stats else None,
        "text": " ".join(w.text for _, w in emitted),
    }


def grid_boundary_error_ms(recognizer: WhisperRecognizer, settings: AsrSettings, grid: Path) -> tuple[float, int]:
    alignment = []
    for line in (grid / "swwp2s.align").read_text().split("\n"):
        if line.strip():
            start, end, word = line.split()
            if word != "sil":
                alignment.append((int(start) / 25000, int(end) / 25000,
                                  {"two": "2"}.get(word, word)))
    audio = read_audio(grid / "id2_vcd_swwp2s.mpg").samples
    words = offline_words(StreamingTranscriber(settings, recognizer=recognizer), audio)
    errors: list[float] = []
    i = 0
    for w in words:
        text = normalize_word(w.text).replace("two", "2")
        for j in range(i, len(alignment)):
            matched = False
            for k in (1, 2):
                if j + k <= len(alignment) and "".join(a[2] for a in alignment[j:j + k]) == text:
                    errors += [abs(w.start_ns / NS - alignment[j][0]) * 1000,
                               abs(w.end_ns / NS - alignment[j + k - 1][1]) * 1000]
                    i, matched = j + k, True
                    break
            if matched:
                break
    return (statistics.median(errors) if errors else float("nan")), len(errors) // 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared-data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the replayed clip")
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2 threads")
    parser.add_argument("--beam-size", type=int, default=None)
    parser.add_argument("--step-ms", type=int, default=None)
    args = parser.parse_args()
    data = Path(args.shared_data)
    if not (data / "talking_head").is_dir():
        print(f"shared data not found at {data}", file=sys.stderr)
        return 2
    whisper = WhisperSettings(cpu_threads=args.threads)
    if args.beam_size:
        whisper = WhisperSettings(cpu_threads=args.threads, beam_size=args.beam_size)
    settings = AsrSettings(whisper=whisper)
    if args.step_ms:
        settings = AsrSettings(whisper=whisper, step_ms=args.step_ms)

    clip = data / "talking_head" / "edtalk" / "pose_source2.mp4"
    samples = read_audio(clip).samples[: int(args.seconds * RATE)]
    print(f"clip: {clip.name}, {len(samples) / RATE:.1f} s; settings: beam {settings.whisper.beam_size}, "
          f"step {settings.step_ms} ms, threads {settings.whisper.cpu_threads}, cpu count {os.cpu_count()}")

    figures: dict[str, object] = {}
    figures["vad_rtf"] = round(vad_rtf(samples), 5)
    print(f"vad_rtf: {figures['vad_rtf']}")

    with WhisperRecognizer(settings.whisper) as recognizer:
        recognizer.decode(samples[:RATE])  # warm-up (first call allocates)
        replay = realtime_replay(samples, settings, recognizer)
        latencies = replay["latencies"]
        figures["asr_rtf"] = round(replay["asr_rtf"], 4)
        figures["asr_cpu_s_per_audio_s"] = round(replay["asr_cpu_s_per_audio_s"], 4)
        figures["word_latency_p50_s"] = round(float(np.percentile(latencies, 50)), 3)
        figures["word_latency_p95_s"] = round(float(np.percentile(latencies, 95)), 3)
        figures["words_committed"] = replay["words"]
        figures["full_window_retries"] = replay["full_window_retries"]
        figures["decodes"] = replay["decodes"]
        figures["audio_lag_p95_s"] = round(replay["audio_lag_p95_s"], 3)
        figures["max_queue_depth"] = replay["max_queue_depth"]
        print(f"real-time replay: {replay['words']} words, asr_rtf {figures['asr_rtf']} "
              f"(CPU s per audio s {figures['asr_cpu_s_per_audio_s']}), "
              f"latency p50 {figures['word_latency_p50_s']} s, p95 {figures['word_latency_p95_s']} s, "
              f"max queue depth {replay['max_queue_depth']} chunks")
        print(f"  text: {replay['text'][:300]}...")

        median_ms, matched = grid_boundary_error_ms(recognizer, settings, data / "grid")
        figures["word_boundary_error_median_ms"] = round(median_ms, 1)
        print(f"GRID swwp2s: {matched} words matched, median boundary error {median_ms:.0f} ms")

        jfk = read_audio(data / "asr_reference" / "jfk.flac").samples
        words = offline_words(StreamingTranscriber(settings, recognizer=recognizer), jfk)
        figures["jfk_wer"] = round(word_error_rate(JFK_TEXT, [w.text for w in words]), 4)
        print(f"JFK WER {figures['jfk_wer']}: {' '.join(w.text for w in words)}")

    figures["targets_met"] = bool(figures["asr_rtf"] <= 0.25 and figures["word_latency_p95_s"] <= 2.5)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
