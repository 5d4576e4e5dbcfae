"""The read stage, one :class:`Reader` per shard: it takes entries from its stream into the worker's hands (first
those its consumer name already holds: a restart under the same name; then new ones; and, beside them, idle ones
reclaimed from dead consumers) and hands each read to admit as one :class:`~.item.Delivery`.

How much it takes and when is the :class:`~.flow.Flow`'s decision; every Redis call goes through its shard's
retry policy, and a stop asked for while it backs off ends the stage."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from ..settings import Settings
from ..streams.client import RawEntry
from ..streams.retry import Retrying, sleep_or_stop
from .channel import Channel
from .flow import Flow
from .item import Delivery
from .metrics import Metrics

__all__ = ["Reader", "StreamSource"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class StreamSource(Protocol):
    """What the reader needs of :class:`~worker.streams.client.StreamClient`."""

    async def read_new(self, count: int, block_ms: int | None) -> list[RawEntry]: ...

    async def read_own_pending(self, count: int, after: str = "0") -> list[RawEntry]: ...

    async def delivery_counts(self, ids: Sequence[str]) -> dict[str, int]: ...

    async def autoclaim(
        self, min_idle_ms: int, start: str, count: int
    ) -> tuple[str, list[RawEntry], dict[str, int], list[str]]: ...


class Reader:
    """Reads shard ``shard`` through ``source`` into ``admit`` until ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        shard: int,
        source: StreamSource,
        retry: Retrying,
        flow: Flow,
        admit: Channel[Delivery],
        metrics: Metrics,
        stop: asyncio.Event,
    ) -> None:
        self.settings, self.shard, self.source, self.retry = settings, shard, source, retry
        self.flow, self.admit, self.metrics, self.stop = flow, admit, metrics, stop

    async def _call(self, what: str, fn: Callable[..., Awaitable[T]], *args: object) -> T | None:
        """``fn(*args)`` under the shard's retry policy; None when the stop comes while it backs off."""
        return await self.retry.call_until(self.stop, what, fn, *args)

    async def _read_in_room(self, what: str, read: Callable[[int], Awaitable[T]]) -> T | None:
        """``read(count)`` of what the worker has room for (at most ``read_count``) under the retry policy; None
        when there is no room (stopped) or the stop comes while it backs off."""
        room = await self.flow.room()
        if not room:
            return None
        return await self._call(what, read, min(room, self.settings.read_count))

    async def _hand_on(self, entries: list[RawEntry], deliveries: dict[str, int]) -> None:
        fresh = self.flow.hold(entries)  # an entry this worker holds already is not taken twice
        if fresh:
            await self.admit.put(Delivery(self.shard, fresh, deliveries))

    async def run(self) -> None:
        """This consumer's own pending entries first, then new ones, each read when the flow gives the turn."""
        if not await self._own_pending():
            return
        s = self.settings
        while not self.stop.is_set():
            room = await self.flow.turn()
            if not room:
                return
            entries = await self._call("read", self.source.read_new, min(room, s.read_count), s.block_ms)
            if entries is None:
                return
            self.metrics.observe_queue_wait(e[0] for e in entries)
            await self._hand_on(entries, {})

    async def _own_pending(self) -> bool:
        """Entries already delivered to this consumer name and not acked (a restart); False if stopped."""
        after = "0"
        while not self.stop.is_set():
            entries = await self._read_in_room(
                "read pending", functools.partial(self.source.read_own_pending, after=after)
            )
            if entries is None:
                return False
            entries = [e for e in entries if e[0] not in self.flow]
            if not entries:
                return True
            after = entries[-1][0]
            counts = await self._call("xpending", self.source.delivery_counts, [e[0] for e in entries])
            if counts is None:
                return False
            await self._hand_on(entries, counts)
        return False

    async def reclaim(self) -> None:
        """Every ``claim_interval_s``: claim entries idle ``claim_min_idle_ms`` from any consumer of the group."""
        while not self.stop.is_set():
            if not await self._reclaim_pass():
                return
            if await sleep_or_stop(self.settings.claim_interval_s, self.stop):
                return

    async def _reclaim_pass(self) -> bool:
        """One XAUTOCLAIM pass over the pending list; False if stopped."""
        s = self.settings
        cursor = "0-0"
        while not self.stop.is_set():
            reply = await self._read_in_room(
                "autoclaim", functools.partial(self.source.autoclaim, s.claim_min_idle_ms, cursor)
            )
            if reply is None:
                return False
            cursor, claimed, counts, deleted = reply
            if deleted:  # dead-lettered and acked by the claim script itself
                self.metrics.comments.labels(outcome="dead_lettered").inc(len(deleted))
                log.warning("dead-lettered %d pending entries deleted from the input stream", len(deleted))
            claimed = [e for e in claimed if e[0] not in self.flow]
            if claimed:
                self.metrics.reclaimed.inc(len(claimed))
                log.info("reclaimed %d entries idle > %d ms", len(claimed), s.claim_min_idle_ms)
                await self._hand_on(claimed, counts)
            if cursor in ("0-0", "0"):
                return True
        return False
