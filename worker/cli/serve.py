"""``livetopic worker``: the service. The signal handlers of the whole package live here."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Callable

from ..options import add_settings_flags, settings_from_args
from ..settings import Settings
from .common import redis_for, run_async

__all__ = ["register"]

log = logging.getLogger("livetopic")


def _install_signals(stop: asyncio.Event, on_hup: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()

    def on_stop(signame: str) -> None:
        if stop.is_set():
            log.warning("second %s: exiting at once; unacked comments will be reclaimed by other workers", signame)
            os._exit(130)
        log.info("%s: stopping (drain within the grace period)", signame)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop, sig.name)
    loop.add_signal_handler(signal.SIGHUP, on_hup)


async def _serve(settings: Settings, url: str) -> int:
    from ..service.worker import Worker

    worker = Worker(settings, url)
    stop = asyncio.Event()
    _install_signals(stop, worker.poke_reload)
    await worker.run(stop)
    log.info("worker stopped")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from ..model.precision import prefer_passive_openmp

    prefer_passive_openmp()  # before torch loads
    settings = settings_from_args(args)
    with redis_for(settings) as url:
        return run_async(_serve(settings, url))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="classify comments from the input stream (the service)")
    add_settings_flags(p)
    p.set_defaults(func=cmd_worker)
