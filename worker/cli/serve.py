"""``livetopic worker``: the service. The signal handlers of the whole package live here."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable

from ..options import add_settings_flags, settings_from_args
from ..settings import Settings
from .common import redis_for, run_async

__all__ = ["StopSignals", "register"]

log = logging.getLogger("livetopic")


class StopSignals:
    """What SIGTERM/SIGINT do: the first asks for a graceful stop (``stop`` is set); a second one exits at once
    (status 130). A supervisor that signals the whole process group can deliver one SIGTERM twice: signals less
    than ``window_s`` apart count as one."""

    def __init__(self, stop: asyncio.Event, *, window_s: float = 2.0, clock: Callable[[], float] = time.monotonic,
                 exit_now: Callable[[int], None] = os._exit) -> None:
        self.stop, self.window_s, self._clock, self._exit_now = stop, window_s, clock, exit_now
        self._first_at: float | None = None

    def __call__(self, signame: str) -> None:
        now = self._clock()
        if self._first_at is not None and now - self._first_at < self.window_s:
            log.info("%s again within %.0fs: taken as the same request to stop", signame, self.window_s)
            return
        if self.stop.is_set():
            log.warning("second %s: exiting at once; unacked comments will be reclaimed by other workers", signame)
            self._exit_now(130)
            return
        self._first_at = now
        log.info("%s: stopping (drain within the grace period)", signame)
        self.stop.set()


def _install_signals(stop: asyncio.Event, on_hup: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    on_stop = StopSignals(stop)
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
    with redis_for(settings, fail_fast=False) as url:  # a worker waits for its Redis
        try:
            return run_async(_serve(settings, url))
        finally:
            # The service has stopped and the process is on its way out: a late repeat of the stop signal (a
            # process-group kill delivers it twice) must not turn a clean exit into death by signal.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_IGN)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="classify comments from the input stream (the service)")
    add_settings_flags(p)
    p.set_defaults(func=cmd_worker)
