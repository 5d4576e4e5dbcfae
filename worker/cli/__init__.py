"""livetopic: a streaming topic classifier for livestream chat. Comments go into a Redis stream; workers
classify them in micro-batches and publish one result per comment.

This package is the one composition root: it alone imports both the service and the tools, and the trainer.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..errors import LivetopicError
from . import dashboard, models, push, report, scalesim, scrape, serve, tail
from .common import quiet_libraries

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from trainer import commands
    from trainer.train import train_model

    from ..tools import demo
    from ..tools.bench import command as bench

    parser = argparse.ArgumentParser(prog="livetopic", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = os.environ.get("LIVETOPIC_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    try:
        return int(args.func(args))
    except LivetopicError as exc:
        print(f"livetopic: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
