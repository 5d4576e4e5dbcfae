"""A bounded queue between two stages that its writer closes: :meth:`Channel.get` returns None once it is
closed and empty, so a stage ends when what is upstream has ended (the drain), with no sentinel to pass on."""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

__all__ = ["Channel"]

T = TypeVar("T")


class Channel(Generic[T]):
    """At most ``size`` items waiting; :meth:`put` waits for room. Any number of writers, one reader."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a channel holds at least one item")
        self.size = size
        self._items: collections.deque[T] = collections.deque()
        self._filled = asyncio.Event()
        self._emptied = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, item: T) -> None:
        while len(self._items) >= self.size:
            self._emptied.clear()
            await self._emptied.wait()
        if self._closed:
            raise RuntimeError("put on a closed channel")
        self._items.append(item)
        self._filled.set()

    async def get(self) -> T | None:
        """The next item; None once the channel is closed and empty."""
        while not self._items:
            if self._closed:
                return None
            self._filled.clear()
            await self._filled.wait()
        item = self._items.popleft()
        self._emptied.set()
        return item

    def close(self) -> None:
        """No more items: the reader gets what is queued, then None."""
        self._closed = True
        self._filled.set()
