"""What every subcommand shares: the event loop runner, the Redis to talk to, offline library settings."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from ..errors import LivetopicError
from ..options import settings_from_args
from ..settings import Settings

__all__ = ["quiet_libraries", "redis_for", "run_async", "run_on_redis", "stop_on_signals"]


def quiet_libraries() -> None:
    """Never reach a hub at run time; no progress bars or warnings from transformers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with contextlib.suppress(Exception):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(coro)


@contextlib.contextmanager
def redis_for(settings: Settings, announce: bool = True) -> Iterator[str]:
    """The configured Redis URL, or an embedded redis-server for the duration of the block."""
    if settings.redis_url:
        yield settings.redis_url
        return
    from ..tools.embedded import EmbeddedRedis

    with EmbeddedRedis(settings.redis_data_dir) as server:
        if announce:
            print(f"embedded redis-server at {server.url} (data in {server.data_dir})", file=sys.stderr, flush=True)
        yield server.url


def stop_on_signals(stop: asyncio.Event, what: str) -> None:
    """SIGINT/SIGTERM set ``stop`` (the producer finishes the chunk in hand and exits 0); a second one exits
    at once (status 130: what was not yet confirmed is sent again, once, by the next run)."""
    loop = asyncio.get_running_loop()

    def on_signal(name: str) -> None:
        if stop.is_set():
            os._exit(130)
        print(f"\n{name}: stopping {what}", file=sys.stderr, flush=True)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)


def run_on_redis(args: argparse.Namespace, command: str,
                 main: Callable[[Settings, str, argparse.Namespace], Coroutine[Any, Any, int]]) -> int:
    """``main(settings, redis_url, args)`` for a command that talks to the workers' Redis, which it needs named
    (``--redis-url``); Ctrl-C ends it quietly."""
    settings = settings_from_args(args)
    if not settings.redis_url:
        raise LivetopicError(f"{command} needs --redis-url (or LIVETOPIC_REDIS_URL): the server the workers use")
    with contextlib.suppress(KeyboardInterrupt):
        return run_async(main(settings, settings.redis_url, args))
    return 0
