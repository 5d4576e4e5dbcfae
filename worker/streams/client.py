"""The worker's stream client: read new and own pending entries, reclaim idle ones, publish results.

Publishing is exactly-once: one server-side script (the commit point, :mod:`.scripts`) publishes the result
or dead letter of each input entry that is not finished yet and acks it, all or nothing, and keeps the ledger
of what is finished (the resume mark and the done set). A comment processed twice (a slow consumer whose
entry another consumer reclaimed, a group recreated or moved by someone) is therefore still published once.

Reclaiming is one server-side script too (XAUTOCLAIM, then per entry its delivery count); an entry
deleted from the input stream while pending (XDEL, MAXLEN trimming) is dead-lettered by that script
in the same step, on Redis 6.2 (which reports it as nil) and 7+ (which drops it from the PEL).

Every method raises errors of :mod:`worker.errors`' Redis branch, never redis-py's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from ..errors import RedisCommandError
from ..settings import StreamNames
from ..wire import parse_entry_id
from .durable import Durability, run_script
from .group import GroupState, ensure_group
from .keys import done_key, resume_key
from .packing import hiredis_packing
from .retry import guarded
from .scripts import PUBLISH_LUA, RECLAIM_LUA, for_server

__all__ = ["DELETED_REASON", "Outgoing", "Published", "RawEntry", "StreamClient", "connect"]

RawEntry = tuple[str, dict[bytes, bytes]]
DELETED_REASON = "entry was deleted from the input stream (XDEL or MAXLEN trimming) before it was processed"


@dataclass(slots=True)
class Outgoing:
    """One record for :meth:`StreamClient.publish`: a result (``dead=False``) or a dead letter."""

    entry_id: str
    fields: Mapping[str, str]
    dead: bool = False


@dataclass(frozen=True, slots=True)
class Published:
    """What one call of the publish script did."""

    flags: list[bool]  # per record: published by this call (False: finished already, nothing written)
    lost: int = 0  # published records that were in no pending list (the group lost them)
    repeated: int = 0  # finished records delivered again (acked, not published)
    moved: str = ""  # how the script moved the group ("behind", "lost", "": not at all)
    mark: str = ""  # the resume mark after the call
    replicas: int | None = None  # replicas that acknowledged the call's writes (None: no WAIT asked for)


def connect(url: str, *, timeout_s: float = 10.0, cluster: bool = False) -> aioredis.Redis:
    """An asyncio client for ``url`` (redis://, rediss:// with TLS, password or ACL user in the URL); with
    ``cluster``, redis-py's cluster client from that seed node (it follows MOVED and ASK, and learns the slots
    again after a failover).

    Responses stay bytes, so the input path can detect invalid UTF-8 itself.
    """
    if cluster:
        # The cluster client offers the same commands; livetopic sends only single-slot ones (see .shards), so
        # it stands in for a Redis client everywhere.
        return cast(
            aioredis.Redis,
            aioredis.RedisCluster.from_url(
                url,
                decode_responses=False,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                health_check_interval=30,
            ),
        )
    client = aioredis.Redis.from_url(
        url,
        decode_responses=False,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        retry_on_timeout=False,
    )
    pool = client.connection_pool
    pool.connection_class = hiredis_packing(pool.connection_class)
    return client


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class StreamClient:
    """``consumer`` of the group of ``streams`` on ``redis``: reads, claims, publishes (capped at the maxlens)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        streams: StreamNames,
        consumer: str,
        *,
        output_maxlen: int = 1_000_000,
        dead_maxlen: int = 100_000,
        durability: Durability | None = None,
    ) -> None:
        self.redis = redis
        self.input_stream, self.output_stream, self.dead_stream = streams.input, streams.output, streams.dead_letter
        group = self.group = streams.group
        self.consumer = consumer
        self.output_maxlen, self.dead_maxlen = output_maxlen, dead_maxlen
        self.durability = durability or Durability()
        self.resume_key = resume_key(self.input_stream, group)
        self.done_key = done_key(self.input_stream, group)
        self._scripts: dict[str, AsyncScript] = {}
        self._lock = asyncio.Lock()

    async def _script(self, name: str) -> AsyncScript:
        """The script ``name`` registered for this server's version (asked once)."""
        async with self._lock:
            if not self._scripts:
                major = await self._server_major()
                self._scripts = {
                    key: self.redis.register_script(for_server(text, major))
                    for key, text in (("publish", PUBLISH_LUA), ("reclaim", RECLAIM_LUA))
                }
        return self._scripts[name]

    async def _server_major(self) -> int:
        """Redis's major version; 6 (the plain scripts, correct everywhere) where an ACL forbids INFO."""
        try:
            info = await guarded("INFO", self.redis.info("server"))
        except RedisCommandError:
            return 6
        if "redis_version" not in info and info and isinstance(next(iter(info.values())), dict):
            info = min(info.values(), key=lambda node: str(node.get("redis_version", "6")))  # a cluster's nodes
        return int(str(info.get("redis_version", "6")).split(".")[0])

    async def ensure_group(self, start_id: str = "0") -> GroupState:
        """Create the consumer group (and the stream) at its resume mark when missing, or move it to the mark
        when it stands wrong (:func:`.group.ensure_group`); ``start_id`` only where there is no mark."""
        return await ensure_group(self.redis, self.input_stream, self.group, start_id)

    async def read_new(self, count: int, block_ms: int | None) -> list[RawEntry]:
        """New entries for this consumer (XREADGROUP ``>``); ``block_ms`` None: return at once."""
        reply = await guarded(
            "XREADGROUP",
            self.redis.xreadgroup(self.group, self.consumer, {self.input_stream: ">"}, count=count, block=block_ms),
        )
        return self._entries(reply)

    async def read_own_pending(self, count: int, after: str = "0") -> list[RawEntry]:
        """Entries already delivered to this consumer name and not acked (after a restart)."""
        reply = await guarded(
            "XREADGROUP", self.redis.xreadgroup(self.group, self.consumer, {self.input_stream: after}, count=count)
        )
        return self._entries(reply)

    @staticmethod
    def _entries(reply: Any) -> list[RawEntry]:
        if not reply:
            return []
        out: list[RawEntry] = []
        for _stream, messages in reply:
            for entry_id, fields in messages:
                out.append((_s(entry_id), dict(fields or {})))
        return out

    async def autoclaim(
        self, min_idle_ms: int, start: str, count: int
    ) -> tuple[str, list[RawEntry], dict[str, int], list[str]]:
        """XAUTOCLAIM entries idle ``min_idle_ms`` or longer, from ``start``.

        Returns (next cursor, claimed entries, their delivery counts, ids of entries that had been
        deleted from the input stream: those are already dead-lettered and acked by this call).
        """
        script = await self._script("reclaim")
        reply = await guarded(
            "reclaim script",
            script(
                keys=[self.input_stream, self.dead_stream, self.done_key],
                args=[self.group, self.consumer, min_idle_ms, start, count, self.dead_maxlen, DELETED_REASON],
            ),
        )
        claimed: list[RawEntry] = []
        counts: dict[str, int] = {}
        for raw_id, flat, times in reply[1]:
            entry_id = _s(raw_id)
            claimed.append((entry_id, dict(zip(flat[::2], flat[1::2], strict=True))))
            counts[entry_id] = int(times)
        return _s(reply[0]), claimed, counts, [_s(x) for x in reply[2]]

    async def delivery_counts(self, ids: Sequence[str]) -> dict[str, int]:
        """Times delivered, for pending entries of this consumer among ``ids``."""
        if not ids:
            return {}
        lo, hi = min(ids, key=parse_entry_id), max(ids, key=parse_entry_id)
        rows = await guarded(
            "XPENDING",
            self.redis.xpending_range(
                self.input_stream, self.group, min=lo, max=hi, count=max(len(ids) * 4, 100), consumername=self.consumer
            ),
        )
        wanted = set(ids)
        counts = {}
        for row in rows:
            entry_id = _s(cast(bytes, row["message_id"]))
            if entry_id in wanted:
                counts[entry_id] = int(row["times_delivered"])
        return counts

    async def publish(self, records: Sequence[Outgoing]) -> Published:
        """Publish and ack ``records`` atomically: those not finished yet are published (see :class:`Published`)."""
        if not records:
            return Published([])
        payload = json.dumps(
            [["d" if r.dead else "r", r.entry_id, [x for pair in r.fields.items() for x in pair]] for r in records],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        script = await self._script("publish")
        reply, replicas = await run_script(
            self.redis,
            script,
            [self.input_stream, self.output_stream, self.dead_stream, self.resume_key, self.done_key],
            [self.group, self.output_maxlen, self.dead_maxlen, payload],
            self.durability,
            "publish script",
        )
        flags, lost, repeated, moved, mark = reply
        return Published([bool(int(f)) for f in flags], int(lost), int(repeated), _s(moved), _s(mark), replicas)
