"""Reads for those who watch the streams (the dashboard, the report): ranges and new entries of a stream,
texts of input entries by id, a consumer group's lag and pending count, how many entries arrived lately.

Read-only: nothing here writes, acks or joins a consumer group. Entries come back decoded leniently
(invalid UTF-8 is replaced), since they are shown to people, not processed. Every method raises errors of
:mod:`worker.errors`' Redis branch, never redis-py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from ..errors import RedisCommandError
from .retry import guarded

__all__ = ["Entry", "GroupState", "StreamReader", "connect_reader"]

Entry = tuple[str, dict[str, str]]  # (entry id, fields)


def connect_reader(url: str, *, timeout_s: float = 10.0) -> aioredis.Redis:
    """A client for :class:`StreamReader`: replies decoded to text by the parser (invalid UTF-8 replaced), which
    is faster than decoding field by field in Python. (The worker's client keeps bytes: see ``client.connect``.)"""
    return aioredis.Redis.from_url(
        url, decode_responses=True, encoding_errors="replace", socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s, health_check_interval=30, retry_on_timeout=False,
    )


def _s(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _entries(rows: Any) -> list[Entry]:
    return [(_s(entry_id), {_s(k): _s(v) for k, v in (fields or {}).items()}) for entry_id, fields in rows or []]


@dataclass(frozen=True, slots=True)
class GroupState:
    """A consumer group of the input stream: entries not yet delivered (``lag``; None when Redis cannot say,
    ``lag_capped`` when it was counted up to a cap) and delivered but not acked (``pending``)."""

    exists: bool
    pending: int = 0
    lag: int | None = None
    lag_capped: bool = False
    consumers: int = 0


class StreamReader:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def range(self, stream: str, start: str = "-", end: str = "+", count: int = 1000) -> list[Entry]:
        """Up to ``count`` entries from ``start`` to ``end`` (ids, ``-``/``+``; ``(id`` excludes it)."""
        return _entries(await guarded("XRANGE", self.redis.xrange(stream, start, end, count=count)))

    async def read_after(self, stream: str, last_id: str, count: int, block_ms: int | None) -> list[Entry]:
        """Entries after ``last_id``, waiting up to ``block_ms`` for the first (None: do not wait)."""
        reply: Any = await guarded("XREAD", self.redis.xread({stream: last_id}, count=count, block=block_ms))
        out: list[Entry] = []
        for _name, rows in reply or []:
            out += _entries(rows)
        return out

    async def last_id(self, stream: str) -> str | None:
        """The id of the newest entry (None when the stream is empty or missing)."""
        rows: Any = await guarded("XREVRANGE", self.redis.xrevrange(stream, count=1))
        return _s(rows[0][0]) if rows else None

    async def length(self, stream: str) -> int:
        return int(await guarded("XLEN", self.redis.xlen(stream)))

    async def texts(self, stream: str, ids: Sequence[str], field: str = "text") -> dict[str, str | None]:
        """``field`` of the entries ``ids`` of ``stream`` (None for an entry no longer there), one round trip."""
        if not ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for entry_id in ids:
            pipe.xrange(stream, entry_id, entry_id, count=1)
        replies = await guarded("XRANGE (pipeline)", pipe.execute())
        out: dict[str, str | None] = {}
        for entry_id, rows in zip(ids, replies, strict=True):
            found = _entries(rows)
            out[entry_id] = found[0][1].get(field) if found else None
        return out

    async def count_since(self, stream: str, since_ms: int, cap: int = 10_000) -> int:
        """Entries whose id time is ``since_ms`` or later, counted up to ``cap``."""
        rows = await guarded("XRANGE", self.redis.xrange(stream, f"{max(0, since_ms)}-0", "+", count=cap))
        return len(rows or [])

    async def group_state(self, stream: str, group: str, lag_cap: int = 10_000) -> GroupState:
        """Pending and lag of ``group`` on ``stream``. Redis 7 reports the lag; on 6.2 the entries after the
        group's last delivered id are counted, up to ``lag_cap``."""
        try:
            groups = await guarded("XINFO GROUPS", self.redis.xinfo_groups(stream))
        except RedisCommandError as exc:
            if "no such key" in str(exc).lower():
                return GroupState(exists=False)
            raise
        info = next((g for g in groups if _s(g.get("name", b"")) == group), None)
        if info is None:
            return GroupState(exists=False)
        pending, consumers = int(info.get("pending") or 0), int(info.get("consumers") or 0)
        lag = info.get("lag")
        if lag is not None:
            return GroupState(True, pending, int(lag), False, consumers)
        last = _s(info.get("last-delivered-id") or b"0-0")
        rows = await guarded("XRANGE", self.redis.xrange(stream, f"({last}", "+", count=lag_cap))
        n = len(rows or [])
        return GroupState(True, pending, n, n >= lag_cap, consumers)
