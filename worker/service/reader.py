"""The read side of the worker: what it holds (:class:`InHand`), when it may take more (:class:`ReadTurn`),
and the :class:`Reader` that takes entries from the stream: first those its consumer name already holds
(a restart under the same name), then new ones, and idle ones reclaimed from dead consumers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from ..errors import RedisTransientError
from ..settings import Settings
from ..streams.client import RawEntry
from ..streams.retry import Retrying, sleep_or_stop
from .metrics import Metrics

__all__ = ["Admit", "InHand", "ReadTurn", "Reader", "StreamSource"]

log = logging.getLogger(__name__)

Admit = Callable[[list[RawEntry], dict[str, int]], Awaitable[None]]


class StreamSource(Protocol):
    """What the reader needs of :class:`~worker.streams.client.StreamClient`."""

    async def read_new(self, count: int, block_ms: int | None) -> list[RawEntry]: ...

    async def read_own_pending(self, count: int, after: str = "0") -> list[RawEntry]: ...

    async def delivery_counts(self, ids: Sequence[str]) -> dict[str, int]: ...

    async def autoclaim(self, min_idle_ms: int, start: str,
                        count: int) -> tuple[str, list[RawEntry], dict[str, int], list[str]]: ...


class InHand:
    """Entries read and not yet acked (at most ``limit``): the reader holds them, the publisher releases them."""

    def __init__(self, limit: int, on_change: Callable[[int], None] | None = None) -> None:
        self.limit = limit
        self._ids: set[str] = set()
        self._room = asyncio.Condition()
        self._on_change = on_change or (lambda n: None)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._ids

    def hold(self, ids: Iterable[str]) -> None:
        self._ids.update(ids)
        self._on_change(len(self._ids))

    async def release(self, ids: Iterable[str]) -> None:
        self._ids.difference_update(ids)
        self._on_change(len(self._ids))
        await self.wake()

    async def wait_room(self, stop: asyncio.Event) -> int:
        """Until fewer than ``limit`` are held (or ``stop``); the room left."""
        async with self._room:
            await self._room.wait_for(lambda: len(self._ids) < self.limit or stop.is_set())
        return self.limit - len(self._ids)

    async def wake(self) -> None:
        """Make waiters re-check (after a release, or when stopping)."""
        async with self._room:
            self._room.notify_all()


class ReadTurn:
    """Whether the reader may take new entries now: ``may_read()``, re-checked whenever :meth:`changed` is called."""

    def __init__(self, may_read: Callable[[], bool]) -> None:
        self.may_read = may_read
        self._cond = asyncio.Condition()

    async def wait(self) -> None:
        async with self._cond:
            await self._cond.wait_for(self.may_read)

    async def changed(self) -> None:
        async with self._cond:
            self._cond.notify_all()


class Reader:
    """Takes entries from the stream into the worker; each batch of entries goes to ``admit`` (entry id →
    delivery count for entries delivered before). Every Redis call goes through ``retry``."""

    def __init__(self, settings: Settings, source: StreamSource, retry: Retrying, in_hand: InHand, turn: ReadTurn,
                 admit: Admit, metrics: Metrics, stop: asyncio.Event) -> None:
        self.settings, self.source, self.retry = settings, source, retry
        self.in_hand, self.turn, self.admit, self.metrics, self.stop = in_hand, turn, admit, metrics, stop

    async def _take(self, entries: list[RawEntry], deliveries: dict[str, int]) -> None:
        fresh = [e for e in entries if e[0] not in self.in_hand]
        if fresh:
            self.in_hand.hold(entry_id for entry_id, _ in fresh)
            await self.admit(fresh, deliveries)

    async def run(self) -> None:
        """Read until ``stop``: first this consumer's own pending entries, then new ones, one read turn each."""
        s = self.settings
        after = "0"
        while not self.stop.is_set():
            await self.in_hand.wait_room(self.stop)
            entries = await self.retry.call("read pending", self.source.read_own_pending, s.read_count, after,
                                            stop=self.stop)
            entries = [e for e in entries if e[0] not in self.in_hand]
            if not entries:
                break
            after = entries[-1][0]
            counts = await self.retry.call("xpending", self.source.delivery_counts, [e[0] for e in entries],
                                           stop=self.stop)
            await self._take(entries, counts)
        while not self.stop.is_set():
            room = await self.in_hand.wait_room(self.stop)
            await self.turn.wait()
            if self.stop.is_set():
                break
            entries = await self.retry.call("read", self.source.read_new, min(room, s.read_count), s.block_ms,
                                            stop=self.stop)
            self.metrics.observe_queue_wait(e[0] for e in entries)
            await self._take(entries, {})

    async def top_up(self) -> None:
        """Take what waits in Redis now, without blocking and without retrying (on a Redis error the read loop
        gets those entries later): the model is free while the read loop holds back."""
        room = self.in_hand.limit - len(self.in_hand)
        if room <= 0 or self.stop.is_set():
            return
        try:
            entries = await self.source.read_new(min(room, self.settings.read_count), None)
        except RedisTransientError as exc:
            log.debug("top-up read failed (%s); the read loop will retry", exc)
            return
        self.metrics.observe_queue_wait(e[0] for e in entries)
        await self._take(entries, {})

    async def reclaim(self) -> None:
        """Every ``claim_interval_s`` until ``stop``: claim entries idle ``claim_min_idle_ms`` from any consumer."""
        s = self.settings
        while not self.stop.is_set():
            cursor = "0-0"
            while not self.stop.is_set():
                room = await self.in_hand.wait_room(self.stop)
                if self.stop.is_set():
                    return
                cursor, claimed, counts, deleted = await self.retry.call(
                    "autoclaim", self.source.autoclaim, s.claim_min_idle_ms, cursor, min(room, s.read_count),
                    stop=self.stop)
                if deleted:  # dead-lettered and acked by the claim script itself
                    self.metrics.comments.labels(outcome="dead_lettered").inc(len(deleted))
                    log.warning("dead-lettered %d pending entries deleted from the input stream", len(deleted))
                claimed = [e for e in claimed if e[0] not in self.in_hand]
                if claimed:
                    self.metrics.reclaimed.inc(len(claimed))
                    log.info("reclaimed %d entries idle > %d ms", len(claimed), s.claim_min_idle_ms)
                    await self._take(claimed, counts)
                if cursor in ("0-0", "0"):
                    break
            if await sleep_or_stop(s.claim_interval_s, self.stop):
                return
