"""What Redis says about the streams: the consumer group's lag and pending count (``XINFO GROUPS``, read here
and nowhere else) and the length of each stream (``XLEN``). For the worker's own stream metrics
(:func:`stream_stats`, one round trip) and the dashboard's health panel (:func:`group_state`).

``lag`` (entries not yet delivered to any consumer of the group) exists from Redis 7.0 on. Redis 6.2 does not
report it, and Redis 7 reports nil where it cannot count (entries deleted past the group's last delivered
id); then :attr:`StreamStats.lag` is None rather than a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from ..errors import RedisCommandError
from .retry import guarded, translate

__all__ = ["GroupState", "StreamStats", "group_state", "stream_stats", "total_group_state", "total_stats"]


@dataclass(frozen=True, slots=True)
class StreamStats:
    """``lag``: entries of the input stream not yet delivered to the group (None: Redis did not say);
    ``pending``: delivered, not yet acknowledged (None: no such group yet); ``lengths``: XLEN per stream."""

    lag: int | None
    pending: int | None
    lengths: Mapping[str, int]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _group_row(groups: Any, group: str) -> Mapping[str, Any] | None:
    for row in groups or ():
        fields = {_text(k): v for k, v in row.items()}
        if _text(fields.get("name", "")) == group:
            return fields
    return None


def _count(value: Any) -> int | None:
    return None if value is None else int(value)


def _wrong_type(reply: Any) -> bool:
    return isinstance(reply, Exception) and str(reply).startswith("WRONGTYPE")


async def stream_stats(redis: aioredis.Redis, stream: str, group: str, others: Sequence[str] = ()) -> StreamStats:
    """Lag and pending of ``group`` on ``stream``, and the length of ``stream`` and of each of ``others``.

    A stream that does not exist has length 0 and no group; a key that holds something else than a stream has
    neither (the publish script reports that key itself). Raises errors of :mod:`worker.errors` (e.g. an ACL
    that forbids XINFO)."""
    names = [stream, *others]
    pipe = redis.pipeline(transaction=False)
    pipe.xinfo_groups(stream)
    for name in names:
        pipe.xlen(name)
    replies = await guarded("XINFO GROUPS/XLEN", pipe.execute(raise_on_error=False))
    groups, lengths = replies[0], dict(zip(names, replies[1:], strict=True))
    for reply in lengths.values():
        if isinstance(reply, Exception) and not _wrong_type(reply):
            raise translate(reply, "XLEN")
    if isinstance(groups, Exception):
        error = translate(groups, "XINFO GROUPS")
        missing = isinstance(error, RedisCommandError) and "no such key" in str(groups).lower()
        if not (missing or _wrong_type(groups)):
            raise error
        groups = []
    row = _group_row(groups, group)
    lag = _count(row.get("lag")) if row is not None else None
    pending = _count(row.get("pending")) if row is not None else None
    return StreamStats(
        lag=lag, pending=pending, lengths={n: int(v) for n, v in lengths.items() if not isinstance(v, Exception)}
    )


async def total_stats(redis: aioredis.Redis, streams: Sequence[str], group: str) -> StreamStats:
    """:func:`stream_stats` of ``group`` summed over the input streams of every shard (lag None when a shard
    does not report it: a sum without it would be a guess)."""
    shards = [await stream_stats(redis, stream, group) for stream in streams]
    lags, pendings = [s.lag for s in shards], [s.pending for s in shards]
    lengths = {name: n for s in shards for name, n in s.lengths.items()}
    return StreamStats(
        lag=None if None in lags else sum(x for x in lags if x is not None),
        pending=None if None in pendings else sum(x for x in pendings if x is not None),
        lengths=lengths,
    )


@dataclass(frozen=True, slots=True)
class GroupState:
    """A consumer group: entries not yet delivered (``lag``; ``lag_capped`` when counted up to a cap) and
    delivered but not acked (``pending``)."""

    exists: bool
    pending: int = 0
    lag: int = 0
    lag_capped: bool = False
    consumers: int = 0


async def group_state(redis: aioredis.Redis, stream: str, group: str, lag_cap: int = 10_000) -> GroupState:
    """Pending and lag of ``group`` on ``stream``. Redis 7 reports the lag; on 6.2 the entries after the group's
    last delivered id are counted, up to ``lag_cap``."""
    try:
        groups = await guarded("XINFO GROUPS", redis.xinfo_groups(stream))
    except RedisCommandError as exc:
        if "no such key" in str(exc).lower():
            return GroupState(exists=False)
        raise
    row = _group_row(groups, group)
    if row is None:
        return GroupState(exists=False)
    pending, consumers = int(row.get("pending") or 0), int(row.get("consumers") or 0)
    if row.get("lag") is not None:
        return GroupState(True, pending, int(row["lag"]), False, consumers)
    last = _text(row.get("last-delivered-id") or b"0-0")
    rows: Any = await guarded("XRANGE", redis.xrange(stream, f"({last}", "+", count=lag_cap))
    n = len(rows or [])
    return GroupState(True, pending, n, n >= lag_cap, consumers)


def total_group_state(shards: Sequence[GroupState]) -> GroupState:
    """The consumer groups of every shard as one: exists when all do; lag and pending summed; the most
    consumers any shard has."""
    if not shards:
        return GroupState(exists=False)
    return GroupState(
        all(g.exists for g in shards),
        sum(g.pending for g in shards),
        sum(g.lag for g in shards),
        any(g.lag_capped for g in shards),
        max(g.consumers for g in shards),
    )
