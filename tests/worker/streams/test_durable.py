"""``--wait-replicas``: the publish script followed by WAIT on the same connection, against a real master and its
real replica (and a master without one, where WAIT times out and says 0)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from worker.settings import StreamNames
from worker.streams.client import Outgoing, StreamClient, connect
from worker.streams.durable import Durability
from worker.streams.producer import StreamProducer
from worker.tools.embedded import EmbeddedRedis


@pytest.fixture
def replica(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "replica", appendonly=False)
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)


async def publish_one(redis: aioredis.Redis, durability: Durability) -> int | None:
    client = StreamClient(redis, StreamNames("in", "out", "dead", "g"), "c", durability=durability)
    await client.ensure_group("0")
    entry_id = await redis.xadd("in", {"text": "加油"})
    await client.read_new(10, None)
    published = await client.publish([Outgoing(entry_id.decode(), {"source_id": entry_id.decode()})])
    assert published.flags == [True]
    return published.replicas


async def test_wait_counts_the_replica_that_has_the_publish(
    redis_server: EmbeddedRedis, replica: EmbeddedRedis
) -> None:
    follower = connect(replica.url)
    await follower.replicaof("127.0.0.1", redis_server.port)
    master = connect(redis_server.url)
    try:
        while (await master.info("replication")).get("connected_slaves", 0) < 1:
            await asyncio.sleep(0.05)  # the replica's handshake, a state polled for
        assert await publish_one(master, Durability(replicas=1, timeout_ms=5_000)) == 1
        assert await follower.xlen("out") == 1  # acknowledged: the replica has it now, not some time later
    finally:
        await master.aclose()
        await follower.aclose()


async def test_without_a_replica_wait_times_out_and_says_so(redis_client: aioredis.Redis) -> None:
    assert await publish_one(redis_client, Durability(replicas=1, timeout_ms=50)) == 0
    assert await publish_one(redis_client, Durability()) is None  # no WAIT asked for


async def test_a_chunk_the_client_sent_twice_lands_once(redis_client: aioredis.Redis) -> None:
    """redis-py sends a command again by itself after a connection fault (as in a failover): the produce script
    then runs twice, the second time clashing with its own ids. The chunk is there, whole: it is not sent again
    under new ids."""
    producer = StreamProducer(redis_client, "in")
    script = producer._script
    calls = 0

    async def twice(*, keys: list[str], args: list[object]) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            await script(keys=keys, args=args)  # landed; its reply lost with the connection
        return await script(keys=keys, args=args)

    producer._script = twice  # type: ignore[assignment]
    await producer.add([{"text": f"{i}", "channel": "c"} for i in range(20)])
    assert await redis_client.xlen("in") == 20
