"""Issue 18, the consumer group's edges, with real workers on real redis-servers (6.2 and 7): a group lost while
the workers are down, a group recreated at 0 by someone else, a consumer deleted while it holds comments, a
SIGTERM during a Redis stall, Redis at maxmemory with the longest comments allowed. Each ends with every
comment exactly once, counted from the streams by ``source_id``."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from worker.model.runtime import LoadedModel
from worker.streams.producer import StreamProducer

from ..inprocess import make_worker, sample
from .conftest import (
    GROUP,
    INPUT,
    Server,
    assert_exactly_once,
    comments,
    push,
    running,
    until,
    wait_count,
    wait_finished,
)


@pytest.mark.parametrize("first", ["worker at $", "push"])
async def test_a_group_lost_while_workers_are_down_skips_no_backlog(
    server: Server, client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel, first: str
) -> None:
    served = await push(client, comments(100, "a", ids=True))
    async with running(make_worker(server.url, tiny_repo, tiny_model, consumer="w1")) as task:
        await wait_finished(client, served, task=task)
    backlog = [(await client.xadd(INPUT, f)).decode() for f in comments(1000, "b", ids=True)]  # no worker runs
    await client.xgroup_destroy(INPUT, GROUP)
    if first == "push":  # livetopic push makes sure the group exists before it pushes
        await StreamProducer(client, INPUT).ensure_group(GROUP, "$")
    worker = make_worker(server.url, tiny_repo, tiny_model, consumer="w2", group_start_id="$")
    async with running(worker) as task:
        await wait_finished(client, served + backlog, task=task, timeout_s=120)
    await assert_exactly_once(client, served + backlog)


async def test_a_group_recreated_at_0_by_someone_else_republishes_nothing(
    server: Server, client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel
) -> None:
    ids = await push(client, comments(1500, ids=True))
    worker = make_worker(server.url, tiny_repo, tiny_model, consumer="w1", max_batch_size=64)
    async with running(worker) as task:
        await wait_count(client, 700)
        async with client.pipeline(transaction=True) as recreate:  # MULTI: no command of the worker in between
            recreate.xgroup_destroy(INPUT, GROUP)
            recreate.xgroup_create(INPUT, GROUP, id="0")  # at once, from the start
            await recreate.execute()
        await wait_finished(client, ids, task=task, timeout_s=120)
        await until(lambda: not len(worker.flow))
    await assert_exactly_once(client, ids)
    assert sample(worker, "livetopic_group_moved_total", reason="behind") >= 1


async def test_a_consumer_deleted_while_it_holds_comments_loses_none(
    server: Server, client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel, stuck_model: threading.Event
) -> None:
    ids = await push(client, comments(58, ids=True))
    worker = make_worker(server.url, tiny_repo, tiny_model, consumer="w1")
    async with running(worker) as task:
        await until(lambda: len(worker.flow) == 58)  # read and stuck in the model
        await client.xgroup_delconsumer(INPUT, GROUP, "w1")
        assert (await client.xpending(INPUT, GROUP))["pending"] == 0  # the group forgot them
        stuck_model.set()
        await wait_finished(client, ids, task=task)
    await assert_exactly_once(client, ids)
    assert sample(worker, "livetopic_unpending_published_total") == 58


async def test_the_drain_honours_the_grace_period_during_a_redis_stall(
    server: Server, client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel
) -> None:
    ids = await push(client, comments(50, ids=True))
    worker = make_worker(server.url, tiny_repo, tiny_model, consumer="w1", shutdown_grace_s=2.0, redis_timeout_s=10.0)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_finished(client, ids, task=task)
    assert server.embedded.process is not None
    pid = server.embedded.process.pid
    os.kill(pid, signal.SIGSTOP)  # Redis stalls: every command hangs until the 10 s socket timeout
    try:
        await asyncio.sleep(0.5)  # the worker is inside a blocked read now (block_ms 500 + the stall)
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        took_s = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert took_s < 2.0 + 3.0, f"the drain took {took_s:.1f}s against a 2 s grace"
    await assert_exactly_once(client, ids)


async def test_out_of_memory_with_the_longest_comments_stays_within_the_documented_overshoot(
    server: Server, client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel
) -> None:
    """Each result carries its comment's text: 2,000 three-byte characters (max_text_chars) each. The fixture
    fails the test if Redis's data went past maxmemory by more than one script call's writes, or its clients'
    buffers by more than the usual tolerance plus one read's reply (256 such entries waiting for the worker)."""
    longest = [{"text": ("加油好球" * 500)[:2000], "user": f"u{i}"} for i in range(600)]
    ids = await push(client, longest)
    server.set_maxmemory(server.used_b() + 1_000_000)  # room for some of the results, not for 600
    server.clients_tolerance_b += 256 * (6_000 + 200)  # one read reply of 256 such entries
    worker = make_worker(
        server.url, tiny_repo, tiny_model, consumer="w1", max_batch_size=256, max_batch_tokens=1_000_000
    )
    async with running(worker) as task:
        await until(lambda: "out of memory" in worker.health.readiness()[1], 120, task=task)
        server.set_maxmemory(0)
        await wait_finished(client, ids, task=task, timeout_s=120)
    await assert_exactly_once(client, ids)
