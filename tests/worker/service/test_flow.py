"""The back-pressure owner alone: what is in hand, room for at most ``limit``, and the turn to read new entries
(only while fewer than one batch waits for the model); a stop answers every waiter. No sleeps: each wait is a
task whose state is checked after the loop settles."""

from __future__ import annotations

import asyncio

import pytest

from worker.service.flow import Flow
from worker.service.health import Health
from worker.service.metrics import Metrics

from .fakes import settle


def make(limit: int = 10, ahead: int = 4) -> tuple[Flow, Metrics]:
    metrics = Metrics()
    return Flow(limit, ahead, Health(metrics)), metrics


def entries(*ns: int) -> list[tuple[str, dict[bytes, bytes]]]:
    return [(f"{n}-0", {}) for n in ns]


async def test_hold_takes_each_entry_once_and_release_frees_it() -> None:
    flow, metrics = make()
    assert [e[0] for e in flow.hold(entries(1, 2))] == ["1-0", "2-0"]
    assert [e[0] for e in flow.hold(entries(2, 3))] == ["3-0"]  # 2 is in hand already: not taken twice
    assert len(flow) == 3 and "2-0" in flow and flow.waiting == 3
    assert metrics.registry.get_sample_value("livetopic_pending_comments") == 3
    flow.started(3)
    flow.release(["1-0", "2-0"])
    assert len(flow) == 1 and "2-0" not in flow and flow.waiting == 0
    assert metrics.registry.get_sample_value("livetopic_pending_comments") == 1


async def test_room_waits_while_the_hands_are_full() -> None:
    flow, _ = make(limit=3)
    flow.hold(entries(1, 2, 3))
    waiter = asyncio.create_task(flow.room())
    await settle()
    assert not waiter.done()
    flow.release(["2-0"])
    assert await asyncio.wait_for(waiter, 5) == 1


async def test_the_turn_comes_when_less_than_a_batch_waits_for_the_model() -> None:
    """The policy: new entries only when this worker can start on them soon (a backlog stays in Redis for a worker
    that frees up first), and always a batch read ahead of a busy model (a free model never waits for a read)."""
    flow, _ = make(limit=100, ahead=4)
    assert await flow.turn() == 100  # nothing waits: read at once
    flow.hold(entries(1, 2, 3))
    assert await flow.turn() == 97  # less than a batch waits: read ahead
    flow.hold(entries(4))
    waiter = asyncio.create_task(flow.turn())
    await settle()
    assert not waiter.done()  # a full batch waits for the model: the rest stays in Redis
    assert await flow.room() == 96  # reclaiming needs room only
    flow.started(4)  # the model took them: read the next batch while it scores this one
    assert await asyncio.wait_for(waiter, 5) == 96


async def test_rejections_leave_the_queue_too() -> None:
    flow, _ = make(limit=100, ahead=2)
    flow.hold(entries(1, 2))
    waiter = asyncio.create_task(flow.turn())
    await settle()
    assert not waiter.done()
    flow.started(2)  # admit set both aside (invalid): they will never reach the model
    assert await asyncio.wait_for(waiter, 5) == 98


async def test_stop_answers_every_waiter_with_no_room() -> None:
    flow, _ = make(limit=1, ahead=1)
    flow.hold(entries(1))
    waiters = [asyncio.create_task(flow.room()), asyncio.create_task(flow.turn())]
    await settle()
    assert not any(w.done() for w in waiters)
    flow.stop()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 5) == [0, 0]
    assert await flow.turn() == 0


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        make(limit=0)
