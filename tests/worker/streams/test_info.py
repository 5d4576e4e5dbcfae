"""The stream numbers behind livetopic_stream_*: XINFO GROUPS lag and pending, XLEN, on real redis-servers
(the bundled 6.2, which has no lag, and 7+, which has)."""

from __future__ import annotations

import redis.asyncio as aioredis

from worker.streams.client import connect
from worker.streams.info import stream_stats
from worker.tools.embedded import EmbeddedRedis

IN, OUT, DEAD, GROUP = "in", "out", "dead", "g"


async def backlog(r: aioredis.Redis, n: int, read: int, ack: int) -> list[bytes]:
    """``n`` entries, of which the group has read ``read`` and acknowledged ``ack``."""
    await r.xgroup_create(IN, GROUP, id="0", mkstream=True)
    ids = [await r.xadd(IN, {"text": f"c{i}"}) for i in range(n)]
    await r.xreadgroup(GROUP, "c1", {IN: ">"}, count=read)
    if ack:
        await r.xack(IN, GROUP, *ids[:ack])
    await r.xadd(OUT, {"x": "1"})
    return ids


async def test_lag_pending_and_lengths_on_redis_7(redis7_server: EmbeddedRedis) -> None:
    r = connect(redis7_server.url)
    try:
        await backlog(r, 50, read=20, ack=5)
        stats = await stream_stats(r, IN, GROUP, (OUT, DEAD))
        assert (stats.lag, stats.pending) == (30, 15)
        assert dict(stats.lengths) == {IN: 50, OUT: 1, DEAD: 0}  # a stream not created yet is empty
    finally:
        await r.aclose()


async def test_redis_6_2_has_no_lag_but_pending_and_lengths(redis_server: EmbeddedRedis) -> None:
    r = connect(redis_server.url)
    try:
        await r.flushall()
        await backlog(r, 10, read=4, ack=1)
        stats = await stream_stats(r, IN, GROUP, (OUT, DEAD))
        info = await r.info("server")
        if str(info["redis_version"]).startswith("6."):
            assert stats.lag is None  # not guessed: Redis 6.2 does not count it
        else:
            assert stats.lag == 6
        assert stats.pending == 3 and stats.lengths[IN] == 10
    finally:
        await r.aclose()


async def test_missing_stream_and_missing_group(redis7_server: EmbeddedRedis) -> None:
    r = connect(redis7_server.url)
    try:
        stats = await stream_stats(r, IN, GROUP, (OUT,))
        assert (stats.lag, stats.pending, dict(stats.lengths)) == (None, None, {IN: 0, OUT: 0})
        await r.xadd(IN, {"text": "x"})
        stats = await stream_stats(r, IN, GROUP)
        assert (stats.lag, stats.pending, dict(stats.lengths)) == (None, None, {IN: 1})
    finally:
        await r.aclose()


async def test_a_key_of_another_type_has_no_numbers(redis7_server: EmbeddedRedis) -> None:
    """Not a stream (an operator's mistake the publish script reports): left out here, never an error."""
    r = connect(redis7_server.url)
    try:
        await backlog(r, 5, read=2, ack=0)
        await r.set(DEAD, "not a stream")
        stats = await stream_stats(r, IN, GROUP, (OUT, DEAD))
        assert (stats.lag, stats.pending, dict(stats.lengths)) == (3, 2, {IN: 5, OUT: 1})
        await r.delete(IN)
        await r.set(IN, "not a stream either")
        stats = await stream_stats(r, IN, GROUP, (OUT,))
        assert (stats.lag, stats.pending, dict(stats.lengths)) == (None, None, {OUT: 1})
    finally:
        await r.aclose()
