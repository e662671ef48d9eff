"""``streamline train`` and ``streamline evaluate``."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from .._quiet import quietly
from ..errors import ConfigError

_REPO = Path(__file__).resolve().parents[2]
_DEFAULT_DATA = os.environ.get("STREAMLINE_SHARED_DATA", str(_REPO.parent / "shared" / "data"))
_DEFAULT_CACHE = os.environ.get(
    "STREAMLINE_FEATURE_CACHE", str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "streamline" / "features")
)


def register(subparsers: Any) -> None:
    """Add the ``train`` and ``evaluate`` subcommands."""
    p = subparsers.add_parser(
        "train",
        help="train the fusion model from the corpora in shared/data (reproduces the default weights)",
        description=(
            "Extract features with the inference operators (cached on disk), train the voice, face and "
            "text encoders and the fusion, calibrate, evaluate on held-out speakers and write fusion.pt, "
            "fusion.json and metrics.json. See docs/fusion.md."
        ),
    )
    p.add_argument("--data", default=_DEFAULT_DATA, help="the shared/data folder (default: %(default)s)")
    p.add_argument("--cache", default=_DEFAULT_CACHE, help="feature cache folder, outside the repository (default: %(default)s)")
    p.add_argument("--out", default=None, help="output folder (default: the packaged weights folder)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strategy", choices=("concat", "attention", "late"), default=None, help="fusion strategy (default: the default model's)")
    p.add_argument("--quick", action="store_true", help="few epochs (a smoke run, not the default weights)")
    p.set_defaults(func=quietly(_train))

    e = subparsers.add_parser(
        "evaluate",
        help="evaluate the fusion model on a labelled manifest (path,label[,transcript])",
        description=(
            "Run the full feature path on each file of the manifest and report accuracy, per-class "
            "precision/recall/F1, macro and weighted F1, ROC-AUC, the confusion matrix and ECE, overall "
            "and per modality subset. The transcript column, when present, is the text input (no ASR is run)."
        ),
    )
    e.add_argument("--manifest", required=True, help="CSV with columns path,label[,transcript]")
    e.add_argument("--modalities", default="face,voice,text", help="comma-separated subset of face,voice,text (default: all)")
    e.add_argument("--json", dest="json_out", default=None, help="write the full report as JSON here")
    e.add_argument("--weights", default=None, help="weights folder (default: the packaged weights)")
    e.add_argument("--hop", type=float, default=0.5, help="window hop in seconds (default: %(default)s)")
    e.set_defaults(func=quietly(_evaluate))


def _train(args: argparse.Namespace) -> int:
    from .train import DEFAULT_SETTINGS, train_default_model
    from .recognizer import DEFAULT_WEIGHTS_DIR

    if args.quick and not args.out:
        raise ConfigError("--quick trains a smoke-test model; give --out DIR so it does not replace the default weights")
    overrides: dict[str, Any] = {
        "data_dir": args.data,
        "cache_dir": args.cache,
        "out_dir": args.out or str(DEFAULT_WEIGHTS_DIR),
        "seed": args.seed,
    }
    if args.strategy:
        overrides["strategy"] = args.strategy
    if args.quick:
        overrides.update(voice_epochs=2, face_epochs=2, text_epochs=1, fusion_epochs=1, fusion_samples=256)
    from dataclasses import replace

    settings = replace(DEFAULT_SETTINGS, **overrides)
    metrics = train_default_model(settings, log_fn=lambda m: print(m, file=sys.stderr, flush=True))
    from .metrics import format_report

    print(format_report(metrics["voice_ravdess_test_clips"], title="voice, RAVDESS held-out actors (clips):"))
    print(format_report(metrics["face_test_images"], title="face, held-out subjects (images):"))
    print(format_report(metrics["text_meld_dev"], title="text, MELD dev:"))
    for name, r in metrics["fused_test_combinations"].items():
        print(f"fused test combinations {name:<16} acc {r['accuracy']:.3f} macro-F1 {r['macro_f1']:.3f} ECE {r['ece']:.3f}")
    print(f"weights written to {settings.out_dir}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_manifest, format_evaluation

    mods = [m.strip() for m in args.modalities.split(",") if m.strip()]
    if not (math.isfinite(args.hop) and args.hop > 0):
        raise ConfigError(f"--hop must be a positive number of seconds, got {args.hop}")
    quiet = not sys.stderr.isatty()

    def progress(k: int, n: int, item: Any) -> None:
        if not quiet:
            print(f"\r[{k + 1}/{n}] {Path(str(item.path)).name[:60]:<60}", end="", file=sys.stderr, flush=True)

    try:
        report = evaluate_manifest(args.manifest, modalities=mods, weights_dir=args.weights, hop_s=args.hop,
                                   progress=progress)
    except ConfigError as exc:  # name the option, not the argument
        raise ConfigError(str(exc).replace("hop_s=", "--hop ").replace("window_s=", "--window ")) from None
    if not quiet:
        print(file=sys.stderr)
    print(format_evaluation(report))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1) + "\n")
    return 0
