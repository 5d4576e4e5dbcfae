"""A comment delivered more than --max-deliveries times (its consumers kept crashing on it) goes to the
dead-letter stream with its delivery count, and is acked; one at the limit is still classified."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis

from worker.model.runtime import LoadedModel
from worker.tools.embedded import EmbeddedRedis

from ..inprocess import make_worker
from .conftest import GROUP, INPUT, assert_exactly_once, push, running, wait_finished


async def redeliver(client: aioredis.Redis, entry_id: str, times: int, total: int) -> None:
    """Deliver pending ``entry_id`` ``times`` more times, each to a consumer that then dies."""
    for n in range(times):
        await client.xclaim(INPUT, GROUP, f"crashed-{n}", 0, [entry_id])
    rows = await client.xpending_range(INPUT, GROUP, entry_id, entry_id, 1)
    assert rows[0]["times_delivered"] == total


async def test_reclaimed_past_max_deliveries_is_dead_lettered(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel
) -> None:
    ids = await push(redis_client, [{"text": "致命留言", "user": "u"}, {"text": "還差一次"}, {"text": "新留言"}])
    await redis_client.xreadgroup(GROUP, "crashed-first", {INPUT: ">"}, count=2)  # delivery 1 of ids[0], ids[1]
    await redeliver(redis_client, ids[0], 4, total=5)  # the reclaim makes 6 > 5
    await redeliver(redis_client, ids[1], 3, total=4)  # the reclaim makes 5, still allowed
    worker = make_worker(redis_server.url, tiny_repo, tiny_model, claim_min_idle_ms=50, max_deliveries=5)
    async with running(worker) as task:
        await wait_finished(redis_client, ids, task=task)
    dead = await assert_exactly_once(redis_client, ids)
    assert list(dead) == [ids[0]]
    letter = dead[ids[0]]
    assert letter["deliveries"] == "6" and "delivered 6 times (max_deliveries 5)" in letter["error"]
    assert letter["text"] == "致命留言" and letter["user"] == "u"


async def test_restarted_consumer_name_past_max_deliveries(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel
) -> None:
    """A worker restarted under a fixed --consumer name first re-reads what that name holds; each such read
    counts a delivery, so a crash loop on one comment ends in a dead letter too."""
    ids = await push(redis_client, [{"text": "再來一次"}, {"text": "正常"}])
    await redis_client.xreadgroup(GROUP, "fixed", {INPUT: ">"}, count=1)
    for _ in range(2):  # two earlier restarts that died on it
        await redis_client.xreadgroup(GROUP, "fixed", {INPUT: "0"})
    worker = make_worker(redis_server.url, tiny_repo, tiny_model, consumer="fixed", max_deliveries=3)
    async with running(worker) as task:
        await wait_finished(redis_client, ids, task=task)
    dead = await assert_exactly_once(redis_client, ids)
    assert list(dead) == [ids[0]] and dead[ids[0]]["deliveries"] == "4"
