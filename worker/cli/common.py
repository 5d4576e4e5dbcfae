"""What every subcommand shares: the event loop runner, the Redis to talk to (the configured one, or the one
embedded server of the data directory), offline library settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError, RedisError, RedisUnavailableError
from ..settings import Settings

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = [
    "StopSignals",
    "quiet_libraries",
    "reach",
    "redacted",
    "redis_for",
    "run_async",
    "run_on_redis",
    "stop_on_signals",
]

log = logging.getLogger("livetopic")


def quiet_libraries(*, hub: bool = False) -> None:
    """Never reach a hub at run time (``hub``: the command may, as the environment allows: ``model pull``); no
    progress bars or warnings from transformers."""
    if not hub:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    for name in ("httpx", "httpx2"):  # huggingface_hub's HTTP clients log every request at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with contextlib.suppress(Exception):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


T = TypeVar("T")
OptionsT = TypeVar("OptionsT")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(coro)


def redacted(url: str) -> str:
    """``url`` without its password (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def reach(url: str, timeout_s: float = 5.0) -> None:
    """Fail fast, in one line, when the Redis at ``url`` does not answer (a typo, a server not started, a wrong
    password). Faults after this first contact are the commands' to ride out."""
    from ..streams.client import connect
    from ..streams.reading import ping

    async def attempt() -> int:
        redis = connect(url, timeout_s=timeout_s)
        try:
            await ping(redis)
        finally:
            with contextlib.suppress(Exception):
                await redis.aclose()
        return 0

    try:
        run_async(attempt())
    except RedisError as exc:
        reason = str(exc).removeprefix("redis PING: ")
        raise RedisUnavailableError(
            f"cannot reach Redis at {redacted(url)}: {reason} (check --redis-url / "
            "LIVETOPIC_REDIS_URL, or leave it unset to use the embedded server)"
        ) from exc


@contextlib.contextmanager
def redis_for(settings: Settings, announce: bool = True, *, fail_fast: bool = True) -> Iterator[str]:
    """The configured Redis URL, or the embedded redis-server of ``settings.redis_data_dir``: the one already
    running there (started by another command), else one started for the duration of the block (and said so on
    stderr; ``announce`` says which one is used in either case). With
    ``fail_fast`` a configured server that does not answer is an error at once; a worker (``fail_fast=False``)
    waits for its Redis instead, not ready meanwhile."""
    if settings.redis_cluster and not settings.redis_url:
        raise ConfigError("--redis-cluster needs --redis-url (a node of the cluster): the embedded server is none")
    if settings.redis_url:
        if fail_fast:
            reach(settings.redis_url, min(settings.redis_timeout_s, 5.0))
        yield settings.redis_url
        return
    from ..tools.embedded import SharedRedis

    with SharedRedis(settings.redis_data_dir) as server:
        if announce or server.started:  # starting one is always said (a `tail` may have found none running)
            how = "started an" if server.started else "using the"
            print(
                f"{how} embedded redis-server at {server.url} (data in {server.data_dir})", file=sys.stderr, flush=True
            )
        if server.limitation:
            print(f"livetopic: note: {server.limitation}", file=sys.stderr, flush=True)
        yield server.url
    if announce and server.kept_for:
        print(
            f"embedded redis-server at {server.url} left running for {server.kept_for} other client(s)",
            file=sys.stderr,
            flush=True,
        )


class StopSignals:
    """What SIGTERM/SIGINT do to a long-running command: the first asks for a graceful stop (``stop`` is set and
    ``stopping`` logged); a second one exits at once (status 130; ``exiting`` says what becomes of the work in
    hand). A supervisor that signals the whole process group can deliver one SIGTERM twice: signals less than
    ``window_s`` apart count as one."""

    def __init__(
        self,
        stop: asyncio.Event,
        stopping: str | None,
        exiting: str,
        *,
        window_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        exit_now: Callable[[int], None] = os._exit,
    ) -> None:
        self.stop, self.stopping, self.exiting, self.window_s = stop, stopping, exiting, window_s
        self._clock, self._exit_now = clock, exit_now
        self._first_at: float | None = None
        self.received: str | None = None  # the name of the signal that asked for the stop

    def __call__(self, signame: str) -> None:
        now = self._clock()
        if self._first_at is not None and now - self._first_at < self.window_s:
            log.info("%s again within %.0fs: taken as the same request to stop", signame, self.window_s)
            return
        if self.stop.is_set():
            log.warning("second %s: exiting at once; %s", signame, self.exiting)
            self._exit_now(130)
            return
        self._first_at, self.received = now, signame
        if self.stopping is not None:  # None: the command says what it kept once it has stopped
            log.info("%s: %s", signame, self.stopping)
        self.stop.set()


def stop_on_signals(
    stop: asyncio.Event, stopping: str | None, exiting: str, on_hup: Callable[[], None] | None = None
) -> StopSignals:
    """Install :class:`StopSignals` for SIGTERM and SIGINT (and ``on_hup`` for SIGHUP) on the running loop."""
    loop = asyncio.get_running_loop()
    on_stop = StopSignals(stop, stopping, exiting)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop, sig.name)
    if on_hup is not None:
        loop.add_signal_handler(signal.SIGHUP, on_hup)
    return on_stop


def run_on_redis(
    settings: Settings,
    main: Callable[[Settings, aioredis.Redis, OptionsT], Coroutine[Any, Any, int]],
    options: OptionsT,
) -> int:
    """``main(settings, redis, options)`` for a command that talks to the workers' Redis: the one named
    (``--redis-url``; an error at once when it does not answer), else the embedded server of the data directory
    (:func:`redis_for`); the client is closed after it; Ctrl-C ends it quietly."""
    from ..streams.client import connect

    async def connected(url: str) -> int:
        redis = connect(url, timeout_s=settings.redis_timeout_s, cluster=settings.redis_cluster)
        try:
            return await main(settings, redis, options)
        finally:
            await redis.aclose()

    with redis_for(settings, announce=False) as url, contextlib.suppress(KeyboardInterrupt):
        return run_async(connected(url))
    return 0
