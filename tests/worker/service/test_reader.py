"""The read stage with an injected stream source (in memory; the real-Redis suites cover the client itself): own
pending entries first, then new ones; never more in hand than allowed; no entry handed on twice; transient errors
retried; new entries read only on the flow's turn; reclaims counted; a stop during a back-off ends the stage.
No sleeps: events and a zero back-off."""

from __future__ import annotations

import asyncio

import pytest

from worker.errors import RedisCommandError, RedisTransientError
from worker.service.channel import Channel
from worker.service.flow import Flow
from worker.service.health import Health
from worker.service.item import Delivery
from worker.service.metrics import Metrics
from worker.service.reader import Reader
from worker.streams.retry import Retrying

from .fakes import FakeSource, counter, entry, no_wait_retry, settings


class Harness:
    """A reader of ``source`` (shard 1) whose deliveries are collected as admit would take them."""

    def __init__(
        self,
        source: FakeSource,
        *,
        max_inflight: int = 100,
        read_count: int = 10,
        ahead: int = 1000,
        retry: Retrying | None = None,
    ) -> None:
        self.source, self.metrics = source, Metrics()
        self.stop = asyncio.Event()
        self.flow = Flow(max_inflight, ahead, Health(self.metrics))
        self.admit: Channel[Delivery] = Channel(1000)
        self.delivered: list[Delivery] = []
        self.reader = Reader(
            settings(max_inflight=max_inflight, read_count=read_count),
            1,
            source,
            retry or no_wait_retry(),
            self.flow,
            self.admit,
            self.metrics,
            self.stop,
        )

    async def take(self, n: int) -> list[str]:
        """The ids of the next deliveries, until ``n`` entries came (5 s at most)."""
        ids: list[str] = []
        async with asyncio.timeout(5):
            while len(ids) < n:
                delivery = await self.admit.get()
                assert delivery is not None and delivery.shard == 1
                self.delivered.append(delivery)
                ids += [e[0] for e in delivery.entries]
        return ids

    async def finish(self, task: asyncio.Task[None]) -> None:
        self.stop.set()
        self.flow.stop()
        self.source.closed.set()
        await asyncio.wait_for(task, 5)


async def test_own_pending_first_then_new_entries() -> None:
    source = FakeSource(pending=[entry(1), entry(2)], new=[entry(3), entry(4)])
    h = Harness(source)
    task = asyncio.create_task(h.reader.run())
    assert await h.take(4) == ["1-0", "2-0", "3-0", "4-0"]
    assert h.delivered[0].deliveries == {"1-0": 3, "2-0": 3}  # with their delivery counts
    assert h.delivered[1].deliveries == {}
    await h.finish(task)


async def test_never_more_in_hand_than_allowed() -> None:
    source = FakeSource(new=[entry(n) for n in range(1, 8)])
    h = Harness(source, max_inflight=3, read_count=10)
    task = asyncio.create_task(h.reader.run())
    assert await h.take(3) == ["1-0", "2-0", "3-0"]
    assert len(h.flow) == 3 and source.new and source.counts == [3]  # asked for the room only; the rest waits
    h.flow.started(3)
    h.flow.release(["1-0", "2-0"])
    assert await h.take(2) == ["4-0", "5-0"]
    assert len(h.flow) == 3
    await h.finish(task)


async def test_new_entries_wait_for_the_turn() -> None:
    """One batch (here 2) waits for the model: no read until the model takes it."""
    source = FakeSource(new=[entry(n) for n in range(1, 6)])
    h = Harness(source, read_count=2, ahead=2)
    task = asyncio.create_task(h.reader.run())
    assert await h.take(2) == ["1-0", "2-0"]
    for _ in range(20):
        await asyncio.sleep(0)  # let the reader run as far as it can
    assert source.calls.count("read_new") == 1 and len(source.new) == 3
    h.flow.started(2)  # the model took the batch: the reader reads the next one
    assert await h.take(2) == ["3-0", "4-0"]
    await h.finish(task)


async def test_transient_errors_are_retried_and_others_raised() -> None:
    source = FakeSource(new=[entry(1)])
    source.fail = [RedisTransientError("connection reset"), RedisTransientError("LOADING")]
    h = Harness(source)
    task = asyncio.create_task(h.reader.run())
    assert await h.take(1) == ["1-0"]
    assert source.calls[:3] == ["read_own_pending"] * 3
    source.fail = [RedisCommandError("NOPERM")]
    source.add(entry(2))
    with pytest.raises(RedisCommandError):
        await asyncio.wait_for(task, 5)


async def test_a_stop_while_backing_off_ends_the_stage() -> None:
    """Redis keeps failing and the reader backs off (an hour here): the stop ends it at once, without an
    exception and without reading again."""
    source = FakeSource(new=[entry(1)])
    source.fail = [RedisTransientError("connection refused")] * 10
    failed = asyncio.Event()
    h = Harness(source, retry=Retrying(base_s=3600, cap_s=3600, on_failure=lambda *args: failed.set()))
    task = asyncio.create_task(h.reader.run())
    await asyncio.wait_for(failed.wait(), 5)
    h.stop.set()
    await asyncio.wait_for(task, 5)
    assert task.result() is None and source.calls == ["read_own_pending"] and len(h.flow) == 0


async def test_reclaim_skips_entries_in_hand_and_counts() -> None:
    source = FakeSource()
    source.claimable = [entry(5), entry(6)]
    source.deleted = ["4-0"]
    h = Harness(source)
    h.flow.hold([entry(5)])  # this worker is still working on it
    task = asyncio.create_task(h.reader.reclaim())
    assert await h.take(1) == ["6-0"]
    assert h.delivered[0].deliveries == {"5-0": 7, "6-0": 7}
    assert counter(h.metrics, "livetopic_reclaimed_total") == 1
    assert counter(h.metrics, "livetopic_comments_total", outcome="dead_lettered") == 1
    await h.finish(task)
