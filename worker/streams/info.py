"""What Redis says about the streams, for the worker's own stream metrics: the consumer group's lag and
pending count (``XINFO GROUPS``) and the length of each stream (``XLEN``), in one round trip.

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

__all__ = ["StreamStats", "stream_stats"]


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
    return StreamStats(lag=lag, pending=pending,
                       lengths={n: int(v) for n, v in lengths.items() if not isinstance(v, Exception)})
