"""The batcher contract, deterministically: an injected clock and sleep, no real waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from worker.service.batcher import MicroBatcher

from .fakes import FakeClock, settle


def make(clock: FakeClock, **kw: Any) -> MicroBatcher[str]:
    args: dict = {"max_items": 4, "max_tokens": 100, "max_wait_s": 0.5}
    args.update(kw)
    return MicroBatcher(cost=len, clock=clock, sleep=clock.sleep, **args)


async def test_waits_for_first_item_then_flushes_at_deadline() -> None:
    clock = FakeClock()
    batcher = make(clock)
    task = asyncio.create_task(batcher.next_batch())
    await settle()
    assert not task.done()  # no item yet: waits however long
    clock.advance(10)
    await settle()
    assert not task.done()
    batcher.put("a")
    await settle()
    assert not task.done()  # deadline is from the first item
    clock.advance(0.25)
    await settle()
    assert not task.done()
    batcher.put("b")
    await settle()
    assert not task.done()  # not full: keeps waiting for the deadline
    clock.advance(0.25)
    await settle()
    assert task.done() and task.result() == ["a", "b"]


async def test_flushes_when_full_without_waiting() -> None:
    clock = FakeClock()
    batcher = make(clock)
    for item in "abcdef":
        batcher.put(item)
    assert await batcher.next_batch() == ["a", "b", "c", "d"]
    task = asyncio.create_task(batcher.next_batch())
    await settle()
    assert not task.done()  # two left: wait for the deadline
    clock.advance(0.5)
    await settle()
    assert task.result() == ["e", "f"]


async def test_token_budget_starts_next_batch_and_never_drops() -> None:
    clock = FakeClock()
    batcher = make(clock, max_items=100, max_tokens=10)
    for item in ["aaaa", "bbbb", "cccc", "d"]:
        batcher.put(item)
    assert await batcher.next_batch() == ["aaaa", "bbbb"]  # 8 tokens; +4 would pass 10
    batcher.put("x" * 50)  # larger than the whole budget: still served, alone
    assert await batcher.next_batch() == ["cccc", "d"]
    assert await batcher.next_batch() == ["x" * 50]
    assert len(batcher) == 0


async def test_full_when_budget_reached_exactly() -> None:
    clock = FakeClock()
    batcher = make(clock, max_items=100, max_tokens=8)
    batcher.put("aaaa")
    batcher.put("bbbb")
    assert await batcher.next_batch() == ["aaaa", "bbbb"]


async def test_item_arriving_wakes_a_waiting_batch() -> None:
    clock = FakeClock()
    batcher = make(clock, max_items=2)
    batcher.put("a")
    task = asyncio.create_task(batcher.next_batch())
    await settle()
    assert not task.done()
    batcher.put("b")  # fills it: flush before the deadline
    await settle()
    assert task.result() == ["a", "b"]


async def test_close_drains_then_returns_empty() -> None:
    clock = FakeClock()
    batcher = make(clock)
    batcher.put("a")
    batcher.put("b")
    batcher.close()
    assert await batcher.next_batch() == ["a", "b"]  # no deadline wait once closed
    assert await batcher.next_batch() == []
    with pytest.raises(RuntimeError):
        batcher.put("c")


async def test_close_wakes_an_idle_consumer() -> None:
    clock = FakeClock()
    batcher = make(clock)
    task = asyncio.create_task(batcher.next_batch())
    await settle()
    batcher.close()
    await settle()
    assert task.result() == []


async def test_zero_wait_flushes_what_is_there() -> None:
    clock = FakeClock()
    batcher = make(clock, max_wait_s=0)
    batcher.put("a")
    assert await batcher.next_batch() == ["a"]


def test_rejects_bad_limits() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(max_items=0, max_tokens=1, max_wait_s=0, cost=len)


async def test_deadline_counts_from_arrival_not_from_the_call() -> None:
    clock = FakeClock()
    batcher = make(clock)
    batcher.put("a")  # arrives while the consumer is busy elsewhere
    clock.advance(0.5)
    assert await batcher.next_batch() == ["a"]  # already due: no further wait


async def test_reports_why_it_flushed_and_how_long_the_first_item_waited() -> None:
    clock = FakeClock()
    flushes: list[tuple[str, float]] = []
    batcher = make(clock, max_items=4, max_tokens=10, on_flush=lambda reason, waited: flushes.append((reason, waited)))
    for item in "abcd":  # full by count
        batcher.put(item)
    clock.advance(0.1)  # they waited while the model was busy
    assert await batcher.next_batch() == ["a", "b", "c", "d"]
    batcher.put("dddd")
    batcher.put("eeee")
    batcher.put("ff")  # 4 + 4 + 2 = 10 tokens: the budget, exactly
    assert await batcher.next_batch() == ["dddd", "eeee", "ff"]
    batcher.put("gggg")
    batcher.put("hhhhhhh")  # would pass the budget: starts the next batch
    assert await batcher.next_batch() == ["gggg"]
    task = asyncio.create_task(batcher.next_batch())  # "hhhhhhh" alone: waits for its deadline
    await settle()
    clock.advance(0.5)
    await settle()
    assert task.result() == ["hhhhhhh"]
    batcher.put("i")
    batcher.close()
    assert await batcher.next_batch() == ["i"]
    assert [r for r, _ in flushes] == ["size", "tokens", "tokens", "deadline", "drain"]
    assert [round(w, 6) for _, w in flushes] == [0.1, 0.0, 0.0, 0.5, 0.0]


async def test_a_batch_already_due_is_a_deadline_flush() -> None:
    clock = FakeClock()
    flushes: list[tuple[str, float]] = []
    batcher = make(clock, max_wait_s=0.2, on_flush=lambda reason, waited: flushes.append((reason, waited)))
    batcher.put("a")
    clock.advance(0.3)
    assert await batcher.next_batch() == ["a"]
    assert flushes == [("deadline", 0.3)]


async def test_extend_queues_many_arrived_at_once() -> None:
    clock = FakeClock()
    flushes: list[tuple[str, float]] = []
    batcher = make(clock, on_flush=lambda reason, waited: flushes.append((reason, waited)))
    batcher.extend([])  # nothing arrives: still waiting for a first item
    task = asyncio.create_task(batcher.next_batch())
    await settle()
    assert not task.done()
    batcher.extend(["a", "b"])
    clock.advance(0.5)
    await settle()
    assert task.result() == ["a", "b"] and flushes == [("deadline", 0.5)]
    batcher.close()
    with pytest.raises(RuntimeError):
        batcher.extend(["c"])


async def test_what_an_item_waited_before_it_was_put_counts_toward_its_deadline() -> None:
    """The wait bounds what batching adds to a comment's latency: time spent before the batcher (in the stream,
    being read and encoded) counts, so a free model does not idle out a full wait on comments that waited
    already. What the flush reports is the wait in the batcher only."""
    clock = FakeClock()
    flushes: list[tuple[str, float]] = []
    batcher = make(clock, on_flush=lambda reason, waited: flushes.append((reason, waited)))  # max wait 0.5 s
    task = asyncio.create_task(batcher.next_batch())
    batcher.extend(["a"], waited_s=0.3)
    await settle()
    assert not task.done()
    clock.advance(0.2)
    await settle()
    assert task.result() == ["a"] and flushes == [("deadline", 0.2)]
    batcher.extend(["b", "c"], waited_s=0.7)  # past the wait already: out at once, whoever else might come
    assert await batcher.next_batch() == ["b", "c"] and flushes[-1] == ("deadline", 0.0)
    batcher.extend(["d"], waited_s=-1.0)  # a negative wait (clocks apart) counts as none
    task = asyncio.create_task(batcher.next_batch())
    clock.advance(0.49)
    await settle()
    assert not task.done()
    clock.advance(0.01)
    await settle()
    assert task.result() == ["d"]
