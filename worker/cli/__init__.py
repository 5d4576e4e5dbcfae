"""The ``livetopic`` command: the one composition root. It alone imports both the service and the tools, and the
trainer. Every mistake a user can make ends in one line on stderr and a non-zero exit; tracebacks only with
``--debug``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from .. import package_version
from ..errors import LivetopicError
from ..options import Command, settings_from_args
from . import dashboard, models, pipeline, push, report, scalesim, scrape, serve, tail
from .common import quiet_libraries

__all__ = ["Parser", "build_parser", "main"]

DESCRIPTION = (
    "livetopic: a streaming topic classifier for livestream chat. Comments go into a Redis stream; "
    "workers classify them in micro-batches and publish one result per comment."
)
EPILOG = """first steps:
  livetopic demo                             everything at once, offline: Redis, a model, a worker, a replay
  livetopic worker --model-repo models       the service (starts an embedded Redis without --redis-url)
  livetopic push comments.jsonl              comments into the stream (finds that embedded Redis)
  livetopic tail                             the latest results, then new ones as they arrive

`livetopic COMMAND --help` describes each command; --debug shows tracebacks."""


class Parser(argparse.ArgumentParser):
    """Every parser of ``livetopic``, its subcommands' included (argparse makes them of the class of the parser
    that adds them): no abbreviated flags (``--rat`` is not taken for ``--rate``), and ``--debug`` anywhere on the
    line (``livetopic push --debug …`` as well as ``livetopic --debug push …``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})
        self.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug logs"
        )
        self.commands: dict[str, Parser] = {}

    def add_subparsers(self, **kwargs: Any) -> argparse._SubParsersAction:
        sub = super().add_subparsers(**kwargs)
        self.commands = sub.choices  # name → parser, filled as commands are added
        return sub


def build_parser() -> Parser:
    from trainer import commands
    from trainer.train import train_model

    from ..tools import demo
    from ..tools.bench import command as bench

    parser = Parser(
        prog="livetopic", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"livetopic {package_version()}")
    parser.set_defaults(debug=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(sub)
    push.register(sub)
    scrape.register(sub)
    tail.register(sub)
    dashboard.register(sub)
    report.register(sub)
    scalesim.register(sub)
    models.register(sub)
    pipeline.register(sub)
    demo.register(sub, train=train_model)
    bench.register(sub)
    commands.register(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    """The settings (flags, environment, defaults: checked for every command, so that a mistyped LIVETOPIC_
    variable is an error wherever it is met), the log level they name, then the command."""
    settings = settings_from_args(args)
    if not args.debug:
        logging.getLogger().setLevel(settings.log_level)
    command: Command = args.func
    return int(command(args, settings))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_libraries(hub=getattr(args, "reaches_hub", False))
    try:
        return _run(args)
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
        print(
            f"livetopic: error: {type(exc).__name__}: {exc} (a bug? run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
