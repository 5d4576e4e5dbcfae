"""A worker (in process, a real Redis, the tiny model) applies retractions (issue 22): published unscored on the
output stream at once, while the comments around them wait for their batch; each counted by action."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis

from worker.streams.producer import StreamProducer
from worker.tools.embedded import EmbeddedRedis

from ...inprocess import make_worker, sample
from ...integration.helpers import entries


async def test_a_retraction_is_published_at_once_without_waiting_for_a_batch(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tiny_repo: Path
) -> None:
    ids = await StreamProducer(redis_client, "livetopic:comments").add(
        [
            {"text": "好球", "id": "m1", "author_id": "7001"},
            {"kind": "retract", "action": "ban", "target_author_id": "7001", "channel": "c"},
            {"text": "加油", "id": "m2"},
            {"kind": "retract", "action": "delete"},  # no target: dead-lettered with its reason
        ]
    )
    worker = make_worker(redis_server.url, tiny_repo, max_wait_ms=60_000, max_batch_size=64)  # a batch waits
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(60):
            while await redis_client.xlen("livetopic:topics") + await redis_client.xlen("livetopic:dead") < 2:
                assert not task.done()
                await asyncio.sleep(0.05)
        [retraction] = await entries(redis_client, "livetopic:topics")  # the comments still wait for their batch
        assert retraction["source_id"] == ids[1] and retraction["kind"] == "retract"
        assert "labels" not in retraction and retraction["target_author_id"] == "7001"
        [dead] = await entries(redis_client, "livetopic:dead")
        assert dead["source_id"] == ids[3] and "retraction without a target" in dead["error"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)  # the drain publishes the batch
    out = await entries(redis_client, "livetopic:topics")
    assert [e["source_id"] for e in out] == [ids[1], ids[0], ids[2]] and "labels" in out[1]
    assert sample(worker, "livetopic_retractions_total", action="ban") == 1
    assert sample(worker, "livetopic_comments_total", outcome="classified") == 2
    assert sample(worker, "livetopic_comments_total", outcome="dead_lettered") == 1
