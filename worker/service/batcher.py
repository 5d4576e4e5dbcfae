"""The micro-batcher: wait for the first item, then flush when ``max_items`` items or ``max_tokens``
tokens are gathered, or ``max_wait_s`` after the first item arrived (``clock()`` based, so tests inject a
clock and a sleep and never wait for real). Time an item spent before it was put (``extend(items, waited_s)``)
counts toward its ``max_wait_s``: the wait bounds what batching adds to an item's latency, so an item that
waited elsewhere already does not hold a free consumer back for the full wait again.

Items are never dropped: an item that would overflow the token budget starts the next batch, and
:meth:`MicroBatcher.close` lets the consumer drain everything that was put before it returns ``[]``.

Each flush is reported to ``on_flush(reason, waited_s)``: why the batch was closed (one of
:data:`FLUSH_REASONS`) and how long its first item had waited, from :meth:`put` to the flush.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["FLUSH_REASONS", "FlushHook", "MicroBatcher"]

T = TypeVar("T")

# size: max_items reached; tokens: the token budget reached, or the next item would pass it; deadline:
# max_wait_s after the first item; drain: closed, what is left goes out without waiting.
FLUSH_REASONS: tuple[str, ...] = ("size", "tokens", "deadline", "drain")
FlushHook = Callable[[str, float], None]


def _ignore_flush(reason: str, waited_s: float) -> None:
    """The default ``on_flush``."""


class MicroBatcher(Generic[T]):
    def __init__(
        self,
        *,
        max_items: int,
        max_tokens: int,
        max_wait_s: float,
        cost: Callable[[T], int],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_flush: FlushHook = _ignore_flush,
    ) -> None:
        if max_items < 1 or max_tokens < 1 or max_wait_s < 0:
            raise ValueError("max_items and max_tokens must be >= 1 and max_wait_s >= 0")
        self.max_items, self.max_tokens, self.max_wait_s = max_items, max_tokens, max_wait_s
        self._cost, self._clock, self._sleep, self._on_flush = cost, clock, sleep, on_flush
        self._items: collections.deque[T] = collections.deque()
        # per item: (clock() at put, the clock() its max_wait_s counts from: at put, less what it had waited)
        self._arrivals: collections.deque[tuple[float, float]] = collections.deque()
        self._arrived = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        self.extend((item,))

    def extend(self, items: Sequence[T], waited_s: float = 0.0) -> None:
        """Queue ``items``, arrived now (one clock reading for all), having waited ``waited_s`` before."""
        if self._closed:
            raise RuntimeError("batcher is closed")
        if items:
            now = self._clock()
            self._items.extend(items)
            self._arrivals.extend(itertools.repeat((now, now - max(0.0, waited_s)), len(items)))
            self._arrived.set()

    def close(self) -> None:
        """No more items; :meth:`next_batch` drains what is queued, then returns ``[]``."""
        self._closed = True
        self._arrived.set()

    def _take(self, batch: list[T], tokens: int) -> tuple[str | None, int]:
        """Move queued items into ``batch``; returns (why it is full, or None; tokens)."""
        while self._items:
            if len(batch) >= self.max_items:
                return "size", tokens
            cost = self._cost(self._items[0])
            if batch and tokens + cost > self.max_tokens:
                return "tokens", tokens
            batch.append(self._items.popleft())
            self._arrivals.popleft()
            tokens += cost
        if len(batch) >= self.max_items:
            return "size", tokens
        return ("tokens" if tokens >= self.max_tokens else None), tokens

    async def _wait_arrival(self, timeout_s: float) -> None:
        self._arrived.clear()
        if self._items or self._closed:
            return
        waiter = asyncio.ensure_future(self._arrived.wait())
        timer = asyncio.ensure_future(self._sleep(timeout_s))
        try:
            await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, timer):
                task.cancel()

    async def next_batch(self) -> list[T]:
        """The next batch; ``[]`` only once closed and drained."""
        while not self._items:
            if self._closed:
                return []
            self._arrived.clear()
            await self._arrived.wait()
        first, since = self._arrivals[0]
        deadline = since + self.max_wait_s  # from the first item's arrival, less what it had waited before
        batch: list[T] = []
        tokens = 0
        while True:
            full, tokens = self._take(batch, tokens)
            remaining = deadline - self._clock()
            reason = full or ("drain" if self._closed else None) or ("deadline" if remaining <= 0 else None)
            if reason is not None:
                self._on_flush(reason, max(0.0, self._clock() - first))
                return batch
            await self._wait_arrival(remaining)
