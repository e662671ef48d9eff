"""Keeping native libraries' start-up chatter out of the command-line tools' output.

MediaPipe and TFLite write to file descriptor 2 directly (not through Python), and
transformers / huggingface_hub print progress bars while loading; the CLI commands
(``analyze``, ``webcam``, ``evaluate``, ``faces``, ``train``) hide both unless ``-v``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import sys
from typing import Callable, Iterator

__all__ = ["prepare_cli_env", "quiet_native_stderr", "quietly"]


def prepare_cli_env(verbose: int) -> None:
    """Offline model loading, and no progress bars or transformers warnings unless ``verbose``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not verbose:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool) -> Iterator[None]:
    """Send what native libraries write to file descriptor 2 (MediaPipe's and TFLite's
    start-up chatter) to /dev/null, keeping Python's ``sys.stderr`` and logging on the
    real stderr. Restored on exit."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        if sys.stderr.fileno() != 2:  # Python's stderr is not fd 2 (redirected, captured): leave it all alone
            raise ValueError
        saved_fd = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    old_stderr = sys.stderr
    new_stderr = os.fdopen(os.dup(saved_fd), "w", buffering=1, encoding=getattr(old_stderr, "encoding", None) or "utf-8",
                           errors="backslashreplace")
    handlers = [h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is old_stderr]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        sys.stderr = new_stderr
        for h in handlers:
            h.setStream(new_stderr)
        yield
    finally:
        try:
            new_stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved_fd, 2)
        sys.stderr = old_stderr
        for h in handlers:
            h.setStream(old_stderr)
        os.close(devnull)
        os.close(saved_fd)
        new_stderr.close()




def quietly(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wrap a CLI command: :func:`prepare_cli_env`, then run it inside :func:`quiet_native_stderr`
    (both off with ``-v``)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        verbose = getattr(args, "verbose", 0)
        prepare_cli_env(verbose)
        with quiet_native_stderr(not verbose):
            return command(args)

    return run
