"""Passthrough fields (channel, user, ts, id) have a length limit: a comment whose channel is 60 KB is
classified once, with the field cut to ``--max-passthrough-chars`` and named in the result's ``truncated``
field; counted from the streams by ``source_id``. In-process workers against a real redis-server (6.2 and 7)."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis

from worker.model.runtime import LoadedModel

from ..inprocess import make_worker
from .conftest import Server, assert_exactly_once, finished, push, running, wait_finished


async def test_a_60_kb_channel_is_cut_and_the_comment_classified_once(
    server: Server, client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel
) -> None:
    long_channel = "".join(f"{i:05d}" for i in range(12_000))  # 60,000 characters, each prefix distinct
    entries = [
        {"text": "好球！", "channel": long_channel, "user": "u1"},
        {"text": "加油", "channel": long_channel, "user": "名" * 300, "id": "m" * 257, "ts": "t" * 256},
        {"text": "普通", "channel": "short", "user": "u2", "id": "m1", "ts": "1:02"},
    ]
    ids = await push(client, entries)
    worker = make_worker(server.url, tiny_repo, tiny_model)  # the default: 256 characters
    async with running(worker) as task:
        await wait_finished(client, ids, task=task)
    assert await assert_exactly_once(client, ids) == {}  # all classified, none dead-lettered
    results = {r["source_id"]: r for r in (await finished(client))[0]}
    first, second, third = (results[i] for i in ids)
    assert first["channel"] == long_channel[:256] and first["truncated"] == "channel" and first["user"] == "u1"
    assert second["channel"] == long_channel[:256] and second["user"] == "名" * 256
    assert second["id"] == "m" * 256 and second["ts"] == "t" * 256 and second["truncated"] == "channel,user,id"
    assert "truncated" not in third and third["channel"] == "short" and third["id"] == "m1"
    assert max(len(v) for r in results.values() for k, v in r.items() if k in ("channel", "user", "ts", "id")) <= 256
