"""The ``streamline`` command line.

Subcommands live beside the code they drive: each module listed in
``_SUBCOMMAND_MODULES`` has ``register(subparsers)`` that adds its parser and
sets ``func(args) -> int``. Errors from streamline become one line on stderr and
a non-zero exit code; a traceback means a bug.

Exit codes: 0 success; 1 a streamline error (bad input, missing model);
2 usage error; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .errors import StreamlineError

__all__ = ["main", "build_parser"]

_SUBCOMMAND_MODULES = (
    "streamline.sources._cli",
    "streamline.speech._cli",
    "streamline.face._cli",
    "streamline.fusion._cli",
    "streamline.pipeline._cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every installed subcommand."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="streamline",
        description="Streaming analysis of synchronized audio, video and transcript.",
    )
    parser.add_argument("--version", action="version", version=f"streamline {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name or (exc.name and module_name.startswith(exc.name + ".")):
                continue  # that part of streamline is not built yet
            raise
        module.register(subparsers)
    return parser


def _refuse_unknown(parser: argparse.ArgumentParser, command: str | None, extra: list[str]) -> None:
    import difflib

    sub = next((a.choices[command] for a in parser._actions  # noqa: SLF001 - argparse keeps them here
                if isinstance(a, argparse._SubParsersAction) and command in a.choices), parser)
    options = [o for action in sub._actions for o in action.option_strings]  # noqa: SLF001
    hints = [f"{x} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(x, options, n=1)) else x
             for x in extra]
    sub.error(f"unrecognized arguments: {' '.join(hints)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the subcommand's parser: its usage line, and the option meant if close
        _refuse_unknown(parser, args.command, extra)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except StreamlineError as exc:
        msg = str(exc)
        for prefix in (f"streamline {args.command}: ", f"{args.command}: "):  # said once, in front
            msg = msg.removeprefix(prefix)
        print(f"streamline {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"streamline {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into a command that stopped reading (e.g. `| head`).
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
