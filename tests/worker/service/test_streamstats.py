"""The worker as its own stream exporter: the poller puts XINFO GROUPS / XLEN numbers of a real Redis into
/metrics' text; a lag that Redis does not report (6.2) is left out, not shown as 0."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest

from worker.errors import RedisCommandError
from worker.service.metrics import Metrics
from worker.service.streamstats import StreamStatsPoller
from worker.streams.client import connect
from worker.streams.info import StreamStats, stream_stats
from worker.streams.retry import Retrying
from worker.tools.embedded import EmbeddedRedis


def exposition(metrics: Metrics) -> dict[str, float]:
    out = {}
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def poll(url: str, metrics: Metrics) -> None:
    """A first poll, one more entry, then the poller's loop: its first poll sees the entry; a stop ends the loop
    (which would otherwise wait an hour for the next poll)."""
    r = connect(url)
    try:
        await r.xgroup_create("in", "g", id="0", mkstream=True)
        for i in range(12):
            await r.xadd("in", {"text": str(i)})
        await r.xreadgroup("g", "c", {"in": ">"}, count=5)
        polled = asyncio.Event()

        async def fetch() -> StreamStats:
            stats = await stream_stats(r, "in", "g", ("out", "dead"))
            polled.set()
            return stats

        poller = StreamStatsPoller(fetch, Retrying(), metrics, interval_s=3600)
        await poller.poll_once()
        await r.xadd("in", {"text": "late"})  # seen by the loop's first poll
        polled.clear()
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        await asyncio.wait_for(polled.wait(), 5)
        stop.set()
        await asyncio.wait_for(task, 5)
    finally:
        await r.aclose()


async def test_gauges_follow_redis_7(redis7_server: EmbeddedRedis) -> None:
    metrics = Metrics()
    assert "livetopic_stream_lag" not in exposition(metrics)  # nothing before the first poll
    await poll(redis7_server.url, metrics)
    samples = exposition(metrics)
    assert samples['livetopic_stream_lag{shard="0"}'] == 8
    assert samples['livetopic_stream_pending{shard="0"}'] == 5
    assert samples['livetopic_stream_length{shard="0",stream="in"}'] == 13
    assert samples['livetopic_stream_length{shard="0",stream="out"}'] == 0
    assert not [name for name in samples if "_created" in name]


async def test_lag_left_out_on_redis_6_2(redis_server: EmbeddedRedis) -> None:
    metrics = Metrics()
    await poll(redis_server.url, metrics)
    samples = exposition(metrics)
    assert "livetopic_stream_lag" not in samples
    assert samples['livetopic_stream_pending{shard="0"}'] == 5


async def test_a_refused_poll_empties_the_gauges_and_never_stops_the_worker() -> None:
    """An ACL without XINFO, say: the poller logs it, shows no stale numbers, and carries on."""
    replies: list[StreamStats | Exception] = [
        StreamStats(7, 2, {"in": 9}),
        RedisCommandError("redis XINFO GROUPS/XLEN: NoPermissionError: no permissions", "XINFO GROUPS/XLEN"),
        RedisCommandError("redis XINFO GROUPS/XLEN: NoPermissionError: no permissions", "XINFO GROUPS/XLEN"),
        StreamStats(0, 0, {"in": 9}),
    ]
    seen: list[dict[str, float]] = []
    metrics = Metrics()

    async def fetch() -> StreamStats:
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    poller = StreamStatsPoller(fetch, Retrying(), metrics, interval_s=0)
    for _ in range(4):
        await poller.poll_once()
        seen.append({k: v for k, v in exposition(metrics).items() if k.startswith("livetopic_stream")})
    assert seen == [
        {
            'livetopic_stream_lag{shard="0"}': 7,
            'livetopic_stream_pending{shard="0"}': 2,
            'livetopic_stream_length{shard="0",stream="in"}': 9,
        },
        {},
        {},
        {
            'livetopic_stream_lag{shard="0"}': 0,
            'livetopic_stream_pending{shard="0"}': 0,
            'livetopic_stream_length{shard="0",stream="in"}': 9,
        },
    ]
