"""The reader with an injected stream client (in memory; the real-Redis suites cover the client itself): own
pending entries first, then new ones; never more in hand than allowed; no entry admitted twice; transient
errors retried; read turns respected; reclaims counted. No sleeps: events and a zero back-off."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from worker.errors import RedisCommandError, RedisTransientError
from worker.service.metrics import Metrics
from worker.service.reader import InHand, Reader, ReadTurn
from worker.settings import load_settings
from worker.streams.client import RawEntry
from worker.streams.retry import Retrying


def entry(n: int) -> RawEntry:
    return f"{n}-0", {b"text": f"comment {n}".encode()}


class FakeSource:
    """In-memory stand-in for StreamClient. ``new`` entries are handed out by read_new; with none, read_new waits
    until more arrive or the source closes (no timer). ``fail`` holds errors to raise on the next calls."""

    def __init__(self, pending: Sequence[RawEntry] = (), new: Sequence[RawEntry] = ()) -> None:
        self.pending, self.new = list(pending), list(new)
        self.claimable: list[RawEntry] = []
        self.deleted: list[str] = []
        self.fail: list[Exception] = []
        self.calls: list[str] = []
        self.arrived, self.closed = asyncio.Event(), asyncio.Event()

    def add(self, *entries: RawEntry) -> None:
        self.new += entries
        self.arrived.set()

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if self.fail:
            raise self.fail.pop(0)

    async def read_new(self, count: int, block_ms: int | None) -> list[RawEntry]:
        self._maybe_fail("read_new")
        if not self.new and block_ms is not None:
            self.arrived.clear()
            waiters = [asyncio.ensure_future(e.wait()) for e in (self.arrived, self.closed)]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
        taken, self.new = self.new[:count], self.new[count:]
        return taken

    async def read_own_pending(self, count: int, after: str = "0") -> list[RawEntry]:
        self._maybe_fail("read_own_pending")
        later = [e for e in self.pending if int(e[0].split("-")[0]) > int(after.split("-")[0])]
        return later[:count]

    async def delivery_counts(self, ids: Sequence[str]) -> dict[str, int]:
        self._maybe_fail("delivery_counts")
        return dict.fromkeys(ids, 3)

    async def autoclaim(self, min_idle_ms: int, start: str,
                        count: int) -> tuple[str, list[RawEntry], dict[str, int], list[str]]:
        self._maybe_fail("autoclaim")
        claimed, self.claimable = self.claimable[:count], self.claimable[count:]
        deleted, self.deleted = self.deleted, []
        return ("0-0" if not self.claimable else "1-0"), claimed, {e[0]: 7 for e in claimed}, deleted


class Harness:
    def __init__(self, source: FakeSource, *, max_inflight: int = 100, read_count: int = 10,
                 may_read: bool = True) -> None:
        self.settings = load_settings({"max_inflight": max_inflight, "read_count": read_count, "metrics_port": 0,
                                       "claim_interval_s": 3600})
        self.source, self.metrics = source, Metrics()
        self.stop = asyncio.Event()
        self.in_hand = InHand(max_inflight)
        self.allow = may_read
        self.turn = ReadTurn(lambda: self.allow or self.stop.is_set())
        self.admitted: list[tuple[list[str], dict[str, int]]] = []
        self.changed = asyncio.Event()
        self.reader = Reader(self.settings, source, Retrying(base_s=0.0), self.in_hand, self.turn, self.admit,
                             self.metrics, self.stop)

    async def admit(self, entries: list[RawEntry], deliveries: dict[str, int]) -> None:
        self.admitted.append(([e[0] for e in entries], dict(deliveries)))
        self.changed.set()

    def ids(self) -> list[str]:
        return [i for ids, _ in self.admitted for i in ids]

    async def until(self, predicate: object) -> None:
        async with asyncio.timeout(5):
            while not predicate():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()

    async def finish(self, task: asyncio.Task[None]) -> None:
        self.stop.set()
        await self.in_hand.wake()
        await self.turn.changed()
        self.source.closed.set()
        await asyncio.wait_for(task, 5)


async def test_own_pending_first_then_new_entries() -> None:
    source = FakeSource(pending=[entry(1), entry(2)], new=[entry(3), entry(4)])
    h = Harness(source)
    task = asyncio.create_task(h.reader.run())
    await h.until(lambda: len(h.ids()) == 4)
    assert h.admitted[0] == (["1-0", "2-0"], {"1-0": 3, "2-0": 3})  # with their delivery counts
    assert h.ids() == ["1-0", "2-0", "3-0", "4-0"] and h.admitted[1][1] == {}
    await h.finish(task)


async def test_never_more_in_hand_than_allowed() -> None:
    source = FakeSource(new=[entry(n) for n in range(1, 8)])
    h = Harness(source, max_inflight=3, read_count=10)
    task = asyncio.create_task(h.reader.run())
    await h.until(lambda: len(h.ids()) == 3)
    assert len(h.in_hand) == 3 and source.new  # the rest waits in the stream
    await h.in_hand.release(["1-0", "2-0"])
    await h.until(lambda: len(h.ids()) == 5)
    assert len(h.in_hand) == 3
    await h.finish(task)


async def test_transient_errors_are_retried_and_others_raised() -> None:
    source = FakeSource(new=[entry(1)])
    source.fail = [RedisTransientError("connection reset"), RedisTransientError("LOADING")]
    h = Harness(source)
    task = asyncio.create_task(h.reader.run())
    await h.until(lambda: h.ids() == ["1-0"])
    assert source.calls[:3] == ["read_own_pending"] * 3
    source.fail = [RedisCommandError("NOPERM")]
    source.add(entry(2))
    with pytest.raises(RedisCommandError):
        await asyncio.wait_for(task, 5)


async def test_reads_wait_for_their_turn() -> None:
    source = FakeSource(new=[entry(1)])
    h = Harness(source, may_read=False)
    task = asyncio.create_task(h.reader.run())
    for _ in range(20):
        await asyncio.sleep(0)  # let the reader run as far as it can
    assert "read_new" not in source.calls and h.ids() == []
    h.allow = True
    await h.turn.changed()
    await h.until(lambda: h.ids() == ["1-0"])
    await h.finish(task)


async def test_top_up_takes_what_waits_and_swallows_transient_errors() -> None:
    source = FakeSource(new=[entry(1), entry(2)])
    h = Harness(source)
    await h.reader.top_up()
    assert h.ids() == ["1-0", "2-0"]
    source.fail = [RedisTransientError("timeout")]
    await h.reader.top_up()  # the read loop will get those entries later
    source.fail = [RedisCommandError("WRONGTYPE")]
    with pytest.raises(RedisCommandError):
        await h.reader.top_up()


async def test_reclaim_skips_entries_in_hand_and_counts() -> None:
    source = FakeSource()
    source.claimable = [entry(5), entry(6)]
    source.deleted = ["4-0"]
    h = Harness(source)
    h.in_hand.hold(["5-0"])  # this worker is still working on it
    task = asyncio.create_task(h.reader.reclaim())
    await h.until(lambda: h.ids() == ["6-0"])
    assert h.admitted == [(["6-0"], {"5-0": 7, "6-0": 7})]
    assert h.metrics.reclaimed._value.get() == 1
    assert h.metrics.comments.labels(outcome="dead_lettered")._value.get() == 1
    await h.finish(task)
