"""The admit stage alone (a fake model, no Redis): each entry becomes one item; the invalid and those delivered
too often go to the publisher with their reason, the rest are encoded once (by the model served when they are
admitted, which is the one that scores them) and put in the batcher; a closed inbox closes the batcher."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from worker.service.admit import Admit
from worker.service.batcher import MicroBatcher
from worker.service.channel import Channel
from worker.service.flow import Flow
from worker.service.health import Health
from worker.service.item import Delivery, Item
from worker.service.metrics import Metrics

from .fakes import FakeClock, FakeModel, entry, settings, settle


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as executor:
        yield executor


class Harness:
    def __init__(
        self, pool: ThreadPoolExecutor, model: FakeModel, clock: FakeClock | None = None, max_wait_s: float = 0
    ) -> None:
        self.model: FakeModel | None = model
        self.inbox: Channel[Delivery] = Channel(10)
        clock = clock or FakeClock()
        self.batcher: MicroBatcher[Item] = MicroBatcher(
            max_items=100,
            max_tokens=10_000,
            max_wait_s=max_wait_s,
            cost=lambda item: len(item.ids),
            clock=clock,
            sleep=clock.sleep,
        )
        self.rejected: Channel[list[Item]] = Channel(10)
        self.flow = Flow(100, 100, Health(Metrics()))
        self.admit = Admit(
            self.inbox,
            self.batcher,
            self.rejected,
            self.flow,
            lambda: self.model,
            pool=pool,
            settings=settings(max_text_chars=20, max_deliveries=5),
            wall_clock=lambda: 3.0,  # the entries' ids are n-0: pushed n ms after the epoch
        )

    async def deliver(
        self, entries: list[tuple[str, dict[bytes, bytes]]], shard: int = 0, deliveries: dict[str, int] | None = None
    ) -> None:
        held = self.flow.hold(entries)
        await self.admit.admit(Delivery(shard, held, deliveries or {}))

    async def rejections(self) -> dict[str, str]:
        """entry id → reason, for what admit sent the publisher so far."""
        out: dict[str, str] = {}
        while len(self.rejected):
            for item in await self.rejected.get() or []:
                assert item.rejection is not None and item.labels is None
                out[item.entry_id] = item.rejection.error
        return out


async def test_valid_entries_are_encoded_once_and_batched(pool: ThreadPoolExecutor) -> None:
    model = FakeModel()
    h = Harness(pool, model)
    await h.deliver([entry(1, "ab"), entry(2, "cde")], shard=3)
    batch = await h.batcher.next_batch()
    assert [(i.entry_id, i.shard, i.ids, i.model) for i in batch] == [
        ("1-0", 3, [97, 98], model),
        ("2-0", 3, [99, 100, 101], model),
    ]
    assert batch[0].comment is not None and batch[0].comment.text == "ab"
    assert model.encoded == ["ab", "cde"] and await h.rejections() == {} and h.flow.waiting == 2


async def test_invalid_and_too_often_delivered_entries_are_rejected_with_reasons(pool: ThreadPoolExecutor) -> None:
    h = Harness(pool, FakeModel())
    await h.deliver(
        [entry(1, "fine"), ("2-0", {b"user": b"u"}), entry(3, "x" * 21), entry(4, "again")], deliveries={"4-0": 6}
    )
    assert await h.rejections() == {
        "2-0": "missing field 'text'",
        "3-0": "text too long: 21 chars > max_text_chars 20",
        "4-0": "delivered 6 times (max_deliveries 5); its consumers crashed or timed out",
    }
    assert [i.entry_id for i in await h.batcher.next_batch()] == ["1-0"]
    assert h.flow.waiting == 1  # the three set aside no longer wait for the model


async def test_a_tokenizer_failure_rejects_only_that_comment(pool: ThreadPoolExecutor) -> None:
    h = Harness(pool, FakeModel(bad_token="§"))
    await h.deliver([entry(1, "ok"), entry(2, "bad §"), entry(3, "fine")])
    assert await h.rejections() == {"2-0": "tokenizer failed: ValueError: cannot tokenise"}
    assert [i.entry_id for i in await h.batcher.next_batch()] == ["1-0", "3-0"]


async def test_a_swap_lands_at_admit_and_nothing_is_encoded_twice(pool: ThreadPoolExecutor) -> None:
    """Before: a comment encoded by the old model was encoded again by the new one when its batch was scored.
    Now the item keeps the model that encoded it, and that model scores it."""
    old, new = FakeModel("fake:1"), FakeModel("fake:2")
    h = Harness(pool, old)
    await h.deliver([entry(1, "ab")])
    h.model = new  # the watcher serves a new version
    await h.deliver([entry(2, "cd")])
    batch = await h.batcher.next_batch()
    assert [(i.entry_id, i.model) for i in batch] == [("1-0", old), ("2-0", new)]
    assert old.encoded == ["ab"] and new.encoded == ["cd"]


async def test_a_closed_inbox_closes_the_batcher(pool: ThreadPoolExecutor) -> None:
    h = Harness(pool, FakeModel())
    task = asyncio.create_task(h.admit.run())
    await h.inbox.put(Delivery(0, h.flow.hold([entry(1, "a")])))
    h.inbox.close()
    await asyncio.wait_for(task, 5)
    assert [i.entry_id for i in await h.batcher.next_batch()] == ["1-0"]
    assert await h.batcher.next_batch() == []  # drained and closed


async def test_a_retraction_goes_to_the_publisher_at_once_unencoded_and_never_batched(pool: ThreadPoolExecutor) -> None:
    """Issue 22: a retraction needs no model: it neither waits for a batch nor holds one up, and is not dropped."""
    model = FakeModel()
    h = Harness(pool, model)
    retract = ("2-0", {b"kind": b"retract", b"action": b"ban", b"target_author_id": b"a7", b"channel": b"c"})
    await h.deliver([entry(1, "ab"), retract, ("3-0", {b"kind": b"retract", b"action": b"delete"})])
    [aside] = [await h.rejected.get()]
    assert aside is not None and [i.entry_id for i in aside] == ["2-0", "3-0"]
    ban, bad = aside
    assert ban.retraction is not None and ban.rejection is None and ban.ids == [] and ban.model is None
    assert (ban.retraction.action, ban.retraction.target) == ("ban", "a7")
    assert bad.rejection is not None and "needs 'target_id'" in bad.rejection.error
    assert model.encoded == ["ab"] and [i.entry_id for i in await h.batcher.next_batch()] == ["1-0"]
    assert h.flow.waiting == 1


async def test_the_time_since_its_push_counts_toward_a_comments_batch_wait(pool: ThreadPoolExecutor) -> None:
    """A comment that waited in the stream (its entry id's time against this host's clock) has waited part of
    ``--max-wait-ms`` already: pushed 2 s before it is admitted under a 1 s wait, its batch is due at once; one
    pushed as it is admitted waits the full second (nothing else comes)."""
    clock = FakeClock()
    h = Harness(pool, FakeModel(), clock, max_wait_s=1.0)  # admit's wall clock reads 3.0 s
    await h.deliver([entry(1000, "old"), entry(1500, "less old")])
    due = asyncio.create_task(h.batcher.next_batch())
    await settle()
    assert due.done() and [i.entry_id for i in due.result()] == ["1000-0", "1500-0"]  # the clock never moved
    await h.deliver([entry(3000, "new")])
    waits = asyncio.create_task(h.batcher.next_batch())
    clock.advance(0.5)
    await settle()
    assert not waits.done()
    clock.advance(0.5)
    await settle()
    assert waits.done() and [i.entry_id for i in waits.result()] == ["3000-0"]
