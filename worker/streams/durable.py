"""A script call followed by ``WAIT`` on the same connection (``--wait-replicas``).

Redis replicates asynchronously: a master killed right after a write may take it with it, and its promoted
replica never had it. ``WAIT n timeout`` blocks until ``n`` replicas acknowledged every write *of the
connection it is sent on*, so it has to follow the script on the very same connection: both go out as one
pipeline (on a cluster, both to the node that serves the script's slot, which the cluster pipeline sends on one
connection). The script is sent whole (EVAL, not EVALSHA): a replica promoted a moment ago may not have it
cached. Where a redirection (MOVED, a slot moved or a failover) makes the cluster client send the script again
on its own, that one call's WAIT counts another connection's writes: the next call is covered again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from .retry import guarded

__all__ = ["Durability", "run_script"]


@dataclass(frozen=True, slots=True)
class Durability:
    """``replicas``: how many replicas must have each write (0: no WAIT); ``timeout_ms``: WAIT's timeout."""

    replicas: int = 0
    timeout_ms: int = 1_000


async def run_script(
    redis: aioredis.Redis,
    script: AsyncScript,
    keys: Sequence[str],
    args: Sequence[Any],
    durability: Durability,
    what: str,
) -> tuple[Any, int | None]:
    """Run ``script``; with ``durability.replicas``, WAIT for them after it. Returns the script's reply and the
    replicas that acknowledged its writes (None: no WAIT asked for)."""
    if durability.replicas <= 0:
        return await guarded(what, script(keys=list(keys), args=list(args))), None
    wait = ("WAIT", durability.replicas, durability.timeout_ms)
    if isinstance(redis, aioredis.RedisCluster):
        cluster_pipe = redis.pipeline()
        cluster_pipe.eval(script.script, len(keys), *keys, *args)
        cluster_pipe.execute_command(*wait, target_nodes=redis.get_node_from_key(keys[0]))
        reply, acked = await guarded(what, cluster_pipe.execute())
    else:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.eval(script.script, len(keys), *keys, *args)  # type: ignore[arg-type]
            pipe.execute_command(*wait)
            reply, acked = await guarded(what, pipe.execute())
    return reply, int(acked)
