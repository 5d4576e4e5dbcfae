"""Reading streams as an observer (no consumer group): follow new entries (XREAD), scan a whole stream in pages
(XRANGE), count entries (XLEN, or those since a time), look entries up by id, a consumer group's lag and pending
count, delete streams. For ``tail``, the demo, the bench, the dashboard and the report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from .retry import guarded

__all__ = [
    "Entry",
    "count_since",
    "decode_fields",
    "delete_streams",
    "follow",
    "follow_all",
    "last",
    "lengths",
    "lookup",
    "ping",
    "scan",
]

Entry = tuple[str, dict[str, str]]  # entry id, fields


def decode_fields(raw: dict[bytes, bytes]) -> dict[str, str]:
    """Stream fields as text (invalid UTF-8 replaced, never raised)."""
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in raw.items()}


async def follow(
    redis: aioredis.Redis, stream: str, after: str, *, count: int = 100, block_ms: int | None = 1000
) -> list[Entry]:
    """Entries of ``stream`` after id ``after`` (``$``: only those added from now on), waiting up to ``block_ms``."""
    reply: Any = await guarded("XREAD", redis.xread({stream: after}, count=count, block=block_ms))
    return [(entry_id.decode(), decode_fields(raw)) for _name, entries in reply or [] for entry_id, raw in entries]


async def follow_all(
    redis: aioredis.Redis, positions: Mapping[str, str], *, count: int = 100, block_ms: int | None = 1000
) -> list[tuple[str, str, dict[str, str]]]:
    """(stream, entry id, fields) after each stream's position, oldest first: one XREAD per stream, all at once
    (the shards of a cluster live in different slots, which one XREAD may not span)."""
    replies = await asyncio.gather(
        *(follow(redis, stream, after, count=count, block_ms=block_ms) for stream, after in positions.items())
    )
    rows = [
        (stream, entry_id, fields)
        for stream, entries in zip(positions, replies, strict=True)
        for entry_id, fields in entries
    ]
    return sorted(rows, key=lambda row: _id_key(row[1]))


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def scan(
    redis: aioredis.Redis, stream: str, *, start: str = "-", end: str = "+", page: int = 1000
) -> AsyncIterator[Entry]:
    """Every entry of ``stream`` from ``start`` to ``end`` (``(id`` excludes it), oldest first, read in pages."""
    low = start
    while True:
        rows: Any = await guarded("XRANGE", redis.xrange(stream, min=low, max=end, count=page))
        for entry_id, raw in rows:
            yield entry_id.decode(), decode_fields(raw)
        if len(rows) < page:
            return
        low = "(" + rows[-1][0].decode()


async def last(redis: aioredis.Redis, stream: str, n: int) -> list[Entry]:
    """The newest ``n`` entries of ``stream`` (XREVRANGE), oldest first."""
    if n <= 0:
        return []
    rows: Any = await guarded("XREVRANGE", redis.xrevrange(stream, max="+", min="-", count=n))
    return [(entry_id.decode(), decode_fields(raw)) for entry_id, raw in reversed(rows)]


async def lengths(redis: aioredis.Redis, *streams: str) -> list[int]:
    """XLEN of each stream (0 for one that does not exist), in one round trip."""
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        pipe.xlen(stream)
    return [int(n) for n in await guarded("XLEN", pipe.execute())]


async def delete_streams(redis: aioredis.Redis, *streams: str) -> None:
    await guarded("DEL", redis.delete(*streams))


async def lookup(redis: aioredis.Redis, stream: str, ids: Sequence[str], field: str = "text") -> dict[str, str | None]:
    """``field`` of the entries ``ids`` of ``stream`` (None for an entry no longer there), in one round trip."""
    if not ids:
        return {}
    pipe = redis.pipeline(transaction=False)
    for entry_id in ids:
        pipe.xrange(stream, entry_id, entry_id, count=1)
    replies = await guarded("XRANGE (pipeline)", pipe.execute())
    out: dict[str, str | None] = {}
    for entry_id, rows in zip(ids, replies, strict=True):
        out[entry_id] = decode_fields(rows[0][1]).get(field) if rows else None
    return out


async def count_since(redis: aioredis.Redis, stream: str, since_ms: int, cap: int = 10_000) -> int:
    """Entries whose id time is ``since_ms`` or later, counted up to ``cap``."""
    rows: Any = await guarded("XRANGE", redis.xrange(stream, f"{max(0, since_ms)}-0", "+", count=cap))
    return len(rows or [])


async def ping(redis: aioredis.Redis) -> None:
    """PING: raises the mapped error when the server does not answer (or refuses the credentials)."""
    await guarded("PING", redis.ping())
