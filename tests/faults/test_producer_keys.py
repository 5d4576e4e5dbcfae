"""The producer script's keys, on Redis 6.2 and 7: a key of the wrong type stops it before its first write (so a
re-run pushes nothing twice), and the de-duplication window is kept per source (channel or followed file), so
two channels whose scrapers number messages alike keep each other's."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from worker.errors import RedisCommandError
from worker.streams.keys import follow_key, seen_key
from worker.streams.producer import Checkpoint, Dedupe, StreamProducer

from .conftest import INPUT


def lines(n: int, channel: str | None = None) -> list[dict[str, str]]:
    extra = {"channel": channel} if channel else {}
    return [{"text": f"第{i}則", "id": f"m{i}", **extra} for i in range(n)]


@pytest.mark.parametrize("wrong", ["checkpoint", "window"])
async def test_a_key_of_the_wrong_type_stops_the_producer_before_its_first_write(
    client: aioredis.Redis, wrong: str
) -> None:
    position, window = follow_key(INPUT, "/chat/a.jsonl"), seen_key(INPUT)
    await client.set(position if wrong == "checkpoint" else window, "not mine")
    producer = StreamProducer(client, INPUT, dedupe=Dedupe(window), max_retry_s=5)
    with pytest.raises(RedisCommandError) as raised:
        await producer.add(lines(10), Checkpoint(position, {"offset": "100"}))
    assert await client.xlen(INPUT) == 0  # nothing landed unrecorded
    assert "holds a string" in str(raised.value)  # and the error names the key
    await client.delete(position, window)  # the operator fixes it; the same chunk again
    await producer.add(lines(10), Checkpoint(position, {"offset": "100"}))
    assert await client.xlen(INPUT) == 10 and await client.hgetall(position) == {b"offset": b"100"}


async def test_the_dedupe_window_is_kept_per_source(client: aioredis.Redis) -> None:
    producer = StreamProducer(client, INPUT, dedupe=Dedupe(seen_key(INPUT)))
    await producer.add(lines(20, "channel-a"))
    await producer.add(lines(20, "channel-b"))  # numbered like channel-a's: other messages all the same
    await producer.add(lines(20, "channel-a"))  # a reconnect sends channel-a's again: skipped
    await producer.add(lines(5), Checkpoint(follow_key(INPUT, "/chat/x.jsonl"), {}))  # no channel: by file
    await producer.add(lines(5), Checkpoint(follow_key(INPUT, "/chat/y.jsonl"), {}))
    await producer.add(lines(5), Checkpoint(follow_key(INPUT, "/chat/x.jsonl"), {}))
    assert await client.xlen(INPUT) == 50 and producer.duplicates == 25
