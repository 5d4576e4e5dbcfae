"""Where a reader stands: the checkpoints that :class:`~worker.streams.producer.StreamProducer` writes with
the entries they cover (the position of a followed file), read back when the reader starts again."""

from __future__ import annotations

import hashlib
from typing import Any

import redis.asyncio as aioredis

from .producer import companion_key
from .retry import guarded

__all__ = ["follow_key", "read_checkpoint", "seen_key"]


def follow_key(stream: str, identity: str) -> str:
    """The checkpoint hash of one followed file (``identity``: its absolute path) feeding ``stream``."""
    return companion_key(stream, "follow:" + hashlib.sha256(identity.encode()).hexdigest()[:32])


def seen_key(stream: str) -> str:
    """The sorted set of message ids pushed into ``stream`` within the de-duplication window."""
    return companion_key(stream, "seen")


async def read_checkpoint(redis: aioredis.Redis, key: str) -> dict[str, str]:
    """The fields of a checkpoint ({} when none was written)."""
    raw: Any = await guarded("HGETALL", redis.hgetall(key))
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()}
