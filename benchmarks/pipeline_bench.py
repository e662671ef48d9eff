"""Pipeline benchmark: real-time factor of ``analyze``, live estimate latency, peak memory.

Figures (the last line printed is one JSON object with all of them):

* ``rtf``: the whole pipeline (face at 15 fps with expression, voice embeddings,
  streaming Whisper tiny.en with text features, synchronizer, fusion) on the 60 s
  talking-head clip ``talking_head/edtalk/pose_source2.mp4``, as fast as possible:
  seconds from the start of decoding to the last estimate, per second of media.
  Model loading is excluded (``load_s``; ``rtf_with_loading`` includes it).
* ``estimate_latency_p50_ms`` / ``estimate_latency_p95_ms``: the same clip replayed
  in real time (``realtime=True``, live policies and lateness budgets): for each
  estimate, the session time when it was delivered minus the end of its window,
  **excluding the time the window waited for committed words** (the part after the
  face and voice streams had passed the window's end and before the words did; see
  docs/pipeline.md). ``estimate_latency_total_p95_ms`` includes it;
  ``word_wait_p95_ms`` is that wait alone; ``word_lag_p95_s`` is the committed-word
  lag of the recogniser in audio time.
* ``peak_rss_mb``: the process's peak resident memory (``ru_maxrss``).

Targets on 2 cores: rtf <= 0.5; estimate latency p95 <= 250 ms.

Usage::

    python benchmarks/pipeline_bench.py [--shared-data ../shared/data] [--realtime-seconds 60] [--skip-realtime]

Runs about 60 s x rtf + 60 s + model loading. CPU contention from other processes
raises every figure: ``loadavg`` records the 1-minute load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from streamline.pipeline import Pipeline, PipelineModels, PipelineSettings  # noqa: E402

CLIP = "talking_head/edtalk/pose_source2.mp4"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", default=os.environ.get("STREAMLINE_SHARED_DATA", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--realtime-seconds", type=float, default=60.0,
                        help="stop the real-time replay after this many seconds (default: the whole clip)")
    parser.add_argument("--skip-realtime", action="store_true")
    args = parser.parse_args()
    clip = Path(args.shared_data) / CLIP
    if not clip.exists():
        print(f"{clip} not found (set --shared-data)", file=sys.stderr)
        return 2
    load0 = os.getloadavg()[0]
    results: dict[str, object] = {"clip": CLIP, "cpus": os.cpu_count(), "loadavg_start": round(load0, 2)}
    t0 = time.perf_counter()
    models = PipelineModels.load(PipelineSettings())
    load_s = time.perf_counter() - t0
    results["load_s"] = round(load_s, 2)
    print(f"models loaded in {load_s:.1f} s")

    # 1. as fast as possible
    with Pipeline.from_file(clip, models=models) as pipeline:
        started = time.perf_counter()
        estimates = pipeline.run()
        wall = time.perf_counter() - started
        m = pipeline.metrics()
    media_s = m["media_s"]
    results["rtf"] = round(m["rtf"], 4)
    results["rtf_with_loading"] = round((wall + load_s) / media_s, 4)
    results["estimates"] = len(estimates)
    results["words"] = m["words"]
    results["stage_mean_ms"] = {k: v["mean_ms"] for k, v in m["stages"].items()}
    results["stage_p95_ms"] = {k: v["p95_ms"] for k, v in m["stages"].items()}
    results["asr_decode_rtf"] = m["asr"]["rtf"] if m.get("asr") else None
    print(f"file mode: {media_s:.1f} s of media in {m['elapsed_s']:.1f} s: real-time factor {m['rtf']:.3f} "
          f"({len(estimates)} estimates, {m['words']} words)")
    print("  time per item (mean ms): " + ", ".join(f"{k} {v['mean_ms']}" for k, v in m["stages"].items()))

    # 2. real-time replay
    if not args.skip_realtime:
        pipeline = Pipeline.from_file(clip, models=models, realtime=True)
        with pipeline:
            pipeline.start()
            pipeline.wait(args.realtime_seconds + 30)
            m = pipeline.metrics()
        lat = m["estimate_latency"]
        x, t, w = lat["excluding_words"], lat["total"], lat["waiting_for_words"]
        results["estimate_latency_p50_ms"] = x["p50_ms"]
        results["estimate_latency_p95_ms"] = x["p95_ms"]
        results["estimate_latency_total_p50_ms"] = t["p50_ms"]
        results["estimate_latency_total_p95_ms"] = t["p95_ms"]
        results["word_wait_p95_ms"] = w["p95_ms"]
        results["word_lag_p50_s"] = (m.get("word_lag") or {}).get("p50_s")
        results["word_lag_p95_s"] = (m.get("word_lag") or {}).get("p95_s")
        results["realtime_estimates"] = m["estimates"]
        results["realtime_incomplete_windows"] = m["sync"]["incomplete_windows"]
        results["realtime_face_dropped"] = m["queues"]["face"]["dropped"]
        print(f"real-time replay: {m['estimates']} estimates; latency excluding the wait for words "
              f"p50 {x['p50_ms']} ms, p95 {x['p95_ms']} ms; total p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms; "
              f"waiting for words p95 {w['p95_ms']} ms; committed-word lag p95 {results['word_lag_p95_s']} s; "
              f"{m['sync']['incomplete_windows']} windows went without a late stream, "
              f"{m['queues']['face']['dropped']} video frames dropped")
    models.close()
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    results["loadavg_end"] = round(os.getloadavg()[0], 2)
    print(f"peak RSS {results['peak_rss_mb']} MB; load average {load0:.2f} -> {results['loadavg_end']}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
