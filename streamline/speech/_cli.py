"""``streamline transcribe FILE [--out words.jsonl]``: committed words as JSON lines."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TextIO

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``transcribe`` subcommand."""
    parser = subparsers.add_parser(
        "transcribe",
        help="transcribe a media file's speech into timed words (JSON lines)",
        description=(
            "Run voice activity detection and streaming Whisper over the first audio stream of FILE "
            "and write one JSON object per committed word, as soon as it is committed: "
            "text, start_s, end_s, probability, utterance_id, language, start_ns, end_ns."
        ),
    )
    parser.add_argument("file", help="an audio or video file")
    parser.add_argument("--out", "-o", help="write the JSON lines here (default: standard output)")
    parser.add_argument("--model", choices=("whisper-tiny.en", "whisper-base"), default="whisper-tiny.en",
                        help="Whisper model (default: whisper-tiny.en; whisper-base is multilingual)")
    parser.add_argument("--model-dir", help="a CTranslate2 Whisper model folder to use instead")
    parser.add_argument("--language", help="force this ISO 639-1 language (multilingual model)")
    parser.add_argument("--beam-size", type=int, help="decoder beam width")
    parser.add_argument("--cpu-threads", type=int, help="CTranslate2 threads")
    parser.add_argument("--step-ms", type=int, help="decode every this many ms of audio")
    parser.add_argument("--partials", action="store_true",
                        help="also write partial (uncommitted) words, with \"committed\": false")
    parser.set_defaults(func=_run)


def _word_json(word) -> str:  # noqa: ANN001 - streamline.types.Word
    return json.dumps(word.as_dict(), ensure_ascii=False, separators=(",", ":"))  # compact, as analyze and faces write


def _run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..errors import ConfigError
    from .asr import AsrSettings
    from .whisper import WhisperSettings

    whisper_kw: dict[str, object] = {"model": args.model}
    for name in ("model_dir", "language", "beam_size", "cpu_threads"):
        if getattr(args, name) is not None:
            whisper_kw[name] = getattr(args, name)
    settings = AsrSettings(whisper=dataclasses.replace(WhisperSettings(), **whisper_kw),
                           emit_partials=bool(args.partials))
    if args.step_ms is not None:
        settings = dataclasses.replace(settings, step_ms=args.step_ms)

    import threading

    from ..errors import NoMediaStreamsError
    from ..sources import open_media
    from .asr import transcribe
    from .whisper import WhisperRecognizer

    # open_media fails here, before any output file exists, on unreadable input,
    # and the model is loaded before the output is opened (a missing model too)
    with open_media(args.file, video=False, audio=True, sample_rate_hz=16_000) as media, \
            WhisperRecognizer(settings.whisper) as recognizer:
        if media.audio is None:
            raise NoMediaStreamsError(f"{args.file}: has no audio stream")
        out: TextIO
        if args.out:
            try:
                out = open(args.out, "w", encoding="utf-8")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise ConfigError(f"--out {args.out}: cannot write there ({exc.strerror})") from exc
        else:
            out = sys.stdout
        done = threading.Event()
        failure: list[BaseException] = []
        written = [0]

        def write(word) -> None:  # noqa: ANN001 - on the recogniser's thread, in order
            if word.committed or args.partials:
                out.write(_word_json(word) + "\n")
                out.flush()
                written[0] += 1

        def fail(exc: BaseException) -> None:
            failure.append(exc)
            done.set()

        try:
            subscription = media.audio.pipe(transcribe(settings, recognizer=recognizer)).subscribe(
                write, fail, done.set)
            try:
                while not done.wait(0.2):
                    pass
            finally:
                subscription.dispose()
        finally:
            if out is not sys.stdout:
                out.close()
                if failure and not written[0]:  # a failure before any word: leave no empty file behind
                    os.unlink(args.out)
    if failure:
        raise failure[0]
    return 0
