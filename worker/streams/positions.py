"""Where a reader stands: the checkpoints that :class:`~worker.streams.producer.StreamProducer` writes with
the entries they cover (the position of a followed file), read back when the reader starts again."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from .retry import guarded

__all__ = ["clear_checkpoint", "read_checkpoint"]


async def read_checkpoint(redis: aioredis.Redis, key: str) -> dict[str, str]:
    """The fields of a checkpoint ({} when none was written)."""
    raw: Any = await guarded("HGETALL", redis.hgetall(key))
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()
    }


async def clear_checkpoint(redis: aioredis.Redis, key: str) -> None:
    await guarded("DEL", redis.delete(key))
