"""Redis errors mapped into livetopic's tree, and the one policy for transient ones: bounded exponential
back-off with jitter, retried until the call succeeds, a stop is asked for, or a time budget runs out."""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Literal, TypeVar

from redis import exceptions as redis_errors

from ..errors import (
    GroupMissingError,
    RedisCommandError,
    RedisError,
    RedisOutOfMemoryError,
    RedisTransientError,
    RedisUnavailableError,
)

__all__ = [
    "STOPPED",
    "Backoff",
    "Retrying",
    "Stopped",
    "error_code",
    "guarded",
    "sleep_or_stop",
    "translate",
    "with_backoff",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors after which the same command may succeed once Redis is back; a write refused with one did not happen.
_TRANSIENT: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    redis_errors.SlotNotCoveredError,
    redis_errors.MaxConnectionsError,
    OSError,
)
# Error codes that mean "not now" rather than "never": a script running too long, a failover under way.
_TRANSIENT_CODES = frozenset(
    {"BUSY", "MASTERDOWN", "NOREPLICAS", "LOADING", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "MOVED", "ASK"}
)
# The code of an error reply: its first word, or (Redis 6.2 wraps errors raised inside a script) the first
# capitalised word after a colon: "Error running script (…): @user_script:1: NOGROUP No such key…".
_CODE = re.compile(r"(?:^|: -?)([A-Z]{2,})\b")


def error_code(text: str) -> str:
    """The error code of a Redis error reply (``"NOGROUP"``, ``"OOM"``…; ``""`` when there is none)."""
    match = _CODE.search(text)
    return match.group(1) if match else ""


# redis-py's words for a failed connect: "Error -2 connecting to host:6379. Name or service not known." A
# negative number is a resolver's (getaddrinfo) error: the host name does not resolve.
_UNRESOLVED = re.compile(r"Error -\d+ connecting to (\S+?):\d+\.\s*(.*?)\.?$")


def _in_words(exc: BaseException) -> str:
    """What went wrong, for people: a host that does not resolve said so, else the library's own words."""
    text = str(exc)
    unresolved = _UNRESOLVED.search(text) if isinstance(exc, redis_errors.ConnectionError) else None
    if unresolved:
        host, why = unresolved.groups()
        return f"cannot resolve the Redis host {host!r} ({why or 'no such name'}: a typo in the URL, or no DNS?)"
    return f"{type(exc).__name__}: {text}"


def translate(exc: BaseException, command: str) -> RedisError:
    """The livetopic error for a redis-py error (or OSError) raised by ``command``."""
    text = str(exc)
    message = f"redis {command}: {_in_words(exc)}"
    code = error_code(text) if isinstance(exc, redis_errors.ResponseError) else ""
    if isinstance(exc, redis_errors.OutOfMemoryError) or code == "OOM":
        return RedisOutOfMemoryError(
            f"redis {command}: Redis is out of memory (maxmemory reached, writes refused): {text}", command
        )
    if isinstance(exc, _TRANSIENT) or code in _TRANSIENT_CODES:
        return RedisTransientError(message, command)
    if code == "NOGROUP":
        return GroupMissingError(message, command)
    return RedisCommandError(message, command)


# redis-py's cluster client may close a connection (a topology refresh after a failover) while another task
# still uses it: asyncio then refuses the write ("… the handler is closed"), or the connection's stream is gone.
_CLOSED_UNDER_US = re.compile(r"handler is closed|'NoneType' object has no attribute '(write|writelines|drain|read)")


async def guarded(command: str, call: Awaitable[T]) -> T:
    """Await ``call`` (a Redis command), mapping its errors with :func:`translate`."""
    try:
        return await call
    except (redis_errors.RedisError, OSError) as exc:
        raise translate(exc, command) from exc
    except (RuntimeError, AttributeError) as exc:
        if not _CLOSED_UNDER_US.search(str(exc)):
            raise
        raise RedisTransientError(f"redis {command}: the connection was closed under it ({exc})", command) from exc


class Backoff:
    """``next()`` gives the next delay: uniform in [c/4, c] with c = min(cap, base·2^n) (jitter that never
    collapses to a busy retry); :meth:`reset` starts again from the base."""

    def __init__(self, base_s: float = 0.05, cap_s: float = 5.0, rng: random.Random | None = None) -> None:
        self.base_s, self.cap_s = base_s, cap_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def __iter__(self) -> Iterator[float]:
        return self

    def __next__(self) -> float:
        ceiling = min(self.cap_s, self.base_s * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return self._rng.uniform(ceiling / 4, ceiling)

    def reset(self) -> None:
        self.attempt = 0


async def sleep_or_stop(delay_s: float, stop: asyncio.Event | None) -> bool:
    """Sleep ``delay_s`` unless ``stop`` is set first; True if stopping."""
    if stop is None:
        await asyncio.sleep(delay_s)
        return False
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay_s)
    except TimeoutError:
        return False
    return True


class Stopped(enum.Enum):
    """What :func:`with_backoff` returns when its ``stop`` was set during a pause."""

    STOPPED = "stopped"


STOPPED = Stopped.STOPPED


async def with_backoff(
    attempt: Callable[[], Awaitable[T]],
    *,
    transient: Callable[[Exception], bool],
    on_failure: Callable[[Exception, int, float], None],
    backoff: Backoff,
    stop: asyncio.Event | None = None,
    progress: Callable[[], int] | None = None,
) -> T | Literal[Stopped.STOPPED]:
    """The one back-off loop: ``await attempt()`` again, after a growing pause, while it fails with an error that
    is ``transient``; any other error is raised. ``on_failure(error, attempt, delay_s)`` is told of each failure
    before its pause (it may raise instead: a budget spent). The pauses start again from the base when an attempt
    made ``progress`` (a count that grew while it ran: a connection that had been working). Returns
    :data:`STOPPED` when ``stop`` is set during a pause."""
    while True:
        before = progress() if progress is not None else 0
        try:
            return await attempt()
        except Exception as exc:
            if not transient(exc):
                raise
            if progress is not None and progress() > before:
                backoff.reset()
            delay = next(backoff)
            on_failure(exc, backoff.attempt, delay)
            if await sleep_or_stop(delay, stop):
                return STOPPED


def _log_failure(what: str, exc: RedisError, attempt: int, delay_s: float) -> None:
    log.warning("redis %s failed (%s); retry %d in %.2fs", what, exc, attempt, delay_s)


class Retrying:
    """Run Redis calls under the transient-error policy. ``on_failure(what, error, attempt, delay_s)`` is told of
    each transient failure (default: a WARNING), ``on_success()`` of each success. ``recover(error)`` may repair
    the cause of a non-transient error (e.g. recreate a missing group): when it returns True the call is tried
    again at once, else the error is raised."""

    def __init__(
        self,
        *,
        base_s: float = 0.05,
        cap_s: float = 5.0,
        on_failure: Callable[[str, RedisError, int, float], None] = _log_failure,
        on_success: Callable[[], None] | None = None,
        recover: Callable[[RedisError], Awaitable[bool]] | None = None,
    ) -> None:
        self.base_s, self.cap_s = base_s, cap_s
        self._on_failure, self._on_success, self._recover = on_failure, on_success, recover

    async def call(self, what: str, fn: Callable[..., Awaitable[T]], *args: object, budget_s: float | None = None) -> T:
        """``await fn(*args)`` until it does not fail transiently. Raises :class:`RedisUnavailableError` once
        ``budget_s`` is spent, and any non-transient error at once."""
        result = await self._attempts(what, fn, args, None, budget_s)
        assert result is not STOPPED  # no stop event: it never stops waiting
        return result

    async def call_until(
        self, stop: asyncio.Event, what: str, fn: Callable[..., Awaitable[T]], *args: object
    ) -> T | None:
        """As :meth:`call`, but when ``stop`` is set while waiting to try again: None (nothing more is tried)."""
        result = await self._attempts(what, fn, args, stop, None)
        return None if result is STOPPED else result

    async def _attempts(
        self,
        what: str,
        fn: Callable[..., Awaitable[T]],
        args: tuple[object, ...],
        stop: asyncio.Event | None,
        budget_s: float | None,
    ) -> T | Literal[Stopped.STOPPED]:
        started = time.monotonic()

        async def attempt() -> T:
            while True:
                try:
                    return await fn(*args)
                except RedisError as exc:
                    transient = isinstance(exc, RedisTransientError)
                    if transient or self._recover is None or not await self._recover(exc):
                        raise

        def failed(exc: Exception, attempt: int, delay_s: float) -> None:
            assert isinstance(exc, RedisTransientError)
            if budget_s is not None and time.monotonic() - started > budget_s:
                raise RedisUnavailableError(
                    f"redis {what}: still failing after {budget_s:.0f}s: {exc}", exc.command
                ) from exc
            self._on_failure(what, exc, attempt, delay_s)

        result = await with_backoff(
            attempt,
            transient=lambda exc: isinstance(exc, RedisTransientError),
            on_failure=failed,
            backoff=Backoff(self.base_s, self.cap_s),
            stop=stop,
        )
        if result is not STOPPED and self._on_success is not None:
            self._on_success()
        return result
