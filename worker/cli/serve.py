"""``livetopic worker``: the service. The signal handlers of the whole package live here."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from ..errors import ConfigError
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


HELP = "classify comments from the input stream (the service)"
ABOUT = (
    "The service: reads the input stream in its consumer group, classifies the comments in micro-batches with "
    "the newest model version of --model-repo (hot-reloaded, SIGHUP to look at once), and publishes one result "
    "per comment to the output stream, or a dead letter with its reason. It serves /metrics, /healthz and "
    "/readyz on --metrics-port. Without --redis-url it starts (or joins) the embedded redis-server. A Redis that "
    "does not answer, or a repository without a version yet, is waited for (not ready meanwhile); a repository "
    "directory that does not exist is an error (exit 2). SIGTERM or Ctrl-C drains what is in hand first."
)


def _check_repo(repo: Path) -> None:
    """A repository that does not exist is a typo (a volume or an empty directory is waited for)."""
    if not repo.exists():
        raise ConfigError(
            f"--model-repo {repo}: the directory does not exist (create it empty to wait for a first version, or "
            "point at the repository that `livetopic train` or `model pull` writes)"
        )
    if not repo.is_dir():
        raise ConfigError(f"--model-repo {repo}: not a directory")


def cmd_worker(_: None, settings: Settings) -> int:
    from ..model.precision import prefer_passive_openmp

    _check_repo(settings.model_repo)
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
    add_command(sub, "worker", cmd_worker, settings=None, help=HELP, description=ABOUT)
