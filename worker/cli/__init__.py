"""The ``livetopic`` command: the one composition root. It alone imports both the service and the tools, and the
trainer. Every mistake a user can make ends in one line on stderr and a non-zero exit; tracebacks only with
``--debug``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..errors import LivetopicError
from . import dashboard, models, push, report, scalesim, scrape, serve, tail
from .common import quiet_libraries

__all__ = ["build_parser", "main"]

DESCRIPTION = ("livetopic: a streaming topic classifier for livestream chat. Comments go into a Redis stream; "
               "workers classify them in micro-batches and publish one result per comment.")
EPILOG = """first steps:
  livetopic demo                             everything at once, offline: Redis, a model, a worker, a replay
  livetopic worker --model-repo models       the service (starts an embedded Redis without --redis-url)
  livetopic push comments.jsonl              comments into the stream (finds that embedded Redis)
  livetopic tail                             the latest results, then new ones as they arrive

`livetopic COMMAND --help` describes each command; --debug shows tracebacks."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("livetopic")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without an install
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    from trainer import commands
    from trainer.train import train_model

    from ..tools import demo
    from ..tools.bench import command as bench

    parser = argparse.ArgumentParser(prog="livetopic", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"livetopic {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(sub)
    push.register(sub)
    scrape.register(sub)
    tail.register(sub)
    dashboard.register(sub)
    report.register(sub)
    scalesim.register(sub)
    models.register(sub)
    demo.register(sub, train=train_model)
    bench.register(sub)
    commands.register(sub)
    _debug_everywhere(sub)
    return parser


def _debug_everywhere(sub: argparse._SubParsersAction) -> None:
    """``livetopic push --debug …`` works as well as ``livetopic --debug push …`` (nested commands too)."""
    for command in sub.choices.values():
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks and debug logs")
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _debug_everywhere(action)


def _log_level(args: argparse.Namespace) -> int:
    if args.debug:
        return logging.DEBUG
    name = getattr(args, "setting__log_level", None) or os.environ.get("LIVETOPIC_LOG_LEVEL", "INFO")
    level = logging.getLevelName(str(name).upper())
    return level if isinstance(level, int) else logging.INFO


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=_log_level(args), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `livetopic tail | head`: the reader left; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except LivetopicError as exc:
        if args.debug:
            raise
        print(f"livetopic: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, or a failure nobody mapped yet: one line, the traceback on request
        if args.debug:
            raise
        print(f"livetopic: error: {type(exc).__name__}: {exc} (a bug? run again with --debug for the traceback)",
              file=sys.stderr)
        return 1
