"""Bounded exponential back-off with full jitter, for Redis faults."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

from redis import exceptions as redis_errors

__all__ = ["TRANSIENT_REDIS_ERRORS", "Backoff", "is_transient", "sleep_or_stop"]

# Errors after which the same command may succeed once Redis is back.
TRANSIENT_REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError, OSError,
)
# Error replies that mean "not now" rather than "never": maxmemory reached, a script running too long,
# a failover or cluster reconfiguration under way. A write refused with one of them did not happen.
_TRANSIENT_REPLIES: tuple[type[BaseException], ...] = (
    redis_errors.OutOfMemoryError, redis_errors.TryAgainError, redis_errors.ClusterDownError,
)
_TRANSIENT_PREFIXES = ("BUSY ", "MASTERDOWN", "NOREPLICAS")


def is_transient(exc: BaseException) -> bool:
    """Whether the same Redis command may succeed when retried later."""
    if isinstance(exc, TRANSIENT_REDIS_ERRORS + _TRANSIENT_REPLIES):
        return True
    return isinstance(exc, redis_errors.ResponseError) and str(exc).startswith(_TRANSIENT_PREFIXES)


class Backoff:
    """``next()`` gives the next delay: uniform in [c/4, c] with c = min(cap, base·2^n) (jitter that never
    collapses to a busy retry); ``reset()`` after a success."""

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


async def sleep_or_stop(delay_s: float, stop: asyncio.Event) -> bool:
    """Sleep ``delay_s`` unless ``stop`` is set first; True if stopping."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay_s)
    except TimeoutError:
        return False
    return True
