"""``livetopic worker``: the service. The signal handlers of the whole package live here."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from ..options import add_command
from ..settings import Settings
from .common import redis_for, run_async, stop_on_signals

__all__ = ["register"]

log = logging.getLogger("livetopic")


async def _serve(settings: Settings, url: str) -> int:
    from ..service.worker import Worker

    worker = Worker(settings, url)
    stop = asyncio.Event()
    stop_on_signals(
        stop,
        "stopping (drain within the grace period)",
        "unacked comments will be reclaimed by other workers",
        on_hup=worker.poke_reload,
    )
    await worker.run(stop)
    log.info("worker stopped")
    return 0


def cmd_worker(_: None, settings: Settings) -> int:
    from ..model.precision import prefer_passive_openmp

    prefer_passive_openmp()  # before torch loads
    with redis_for(settings, fail_fast=False) as url:  # a worker waits for its Redis
        try:
            return run_async(_serve(settings, url))
        finally:
            # The service has stopped and the process is on its way out: a late repeat of the stop signal (a
            # process-group kill delivers it twice) must not turn a clean exit into death by signal.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_IGN)


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "worker", cmd_worker, settings=None, help="classify comments from the input stream (the service)")
