"""Everything that speaks Redis Streams. Nothing else in the package builds Redis commands.

Publishing is exactly-once: one server-side script XACKs each input entry and, only if the ack
removed a pending entry (XACK returned 1), XADDs its result or dead letter. A comment processed twice
(a slow consumer whose entry another consumer reclaimed) is therefore still published once.

Reclaiming is one server-side script too (XAUTOCLAIM, then per entry its delivery count); an entry
deleted from the input stream while pending (XDEL, MAXLEN trimming) is dead-lettered by that script
in the same step, on Redis 6.2 (which reports it as nil) and 7+ (which drops it from the PEL).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

__all__ = ["DELETED_REASON", "Outgoing", "RawEntry", "StreamClient", "connect"]

RawEntry = tuple[str, dict[bytes, bytes]]

# KEYS: input, output, dead. ARGV: group, output maxlen, dead maxlen, then per record:
# kind ('r' result | 'd' dead letter), entry id, field count n, then n field/value pairs.
# Returns one flag per record: 1 published, 0 skipped (already acked by someone else).
_PUBLISH_LUA = """
local out = {}
local i = 4
while i <= #ARGV do
  local kind, id, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    local args = {}
    for j = 1, 2 * n do args[j] = ARGV[i + 2 + j] end
    if kind == 'r' then
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(args))
    else
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(args))
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  i = i + 3 + 2 * n
end
return out
"""

# KEYS: input, dead. ARGV: group, consumer, min idle ms, start id, count, dead maxlen, deleted reason.
# XAUTOCLAIM ... JUSTID claims without counting a delivery; XCLAIM then counts one (an entry this
# consumer already held is only read, so entries it is still working on are not counted again).
# Returns {next cursor, {{id, {field, value, ...}, times delivered}, ...}, {dead-lettered id, ...}}.
_AUTOCLAIM_LUA = """
local group, me = ARGV[1], ARGV[2]
local owner, times = {}, {}
for _, row in ipairs(redis.call('XPENDING', KEYS[1], group, 'IDLE', ARGV[3], ARGV[4], '+', ARGV[5])) do
  owner[row[1]], times[row[1]] = row[2], row[4]
end
local r = redis.call('XAUTOCLAIM', KEYS[1], group, me, ARGV[3], ARGV[4], 'COUNT', ARGV[5], 'JUSTID')
local claimed, deleted = {}, {}
local function dead(id)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'source_id', id, 'error', ARGV[7],
             'deliveries', times[id] or 0)
  deleted[#deleted + 1] = id
end
for _, id in ipairs(r[2]) do
  local e
  if owner[id] == me then
    e = redis.call('XRANGE', KEYS[1], id, id)
  else
    e = redis.call('XCLAIM', KEYS[1], group, me, 0, id)
  end
  if e[1] then
    claimed[#claimed + 1] = {id, e[1][2], redis.call('XPENDING', KEYS[1], group, id, id, 1)[1][4]}
  elseif redis.call('XACK', KEYS[1], group, id) == 1 then  -- Redis 6.2: deleted, still pending
    dead(id)
  end
end
for _, id in ipairs(r[3] or {}) do dead(id) end  -- Redis 7+: deleted, already dropped from the PEL
return {r[1], claimed, deleted}
"""
DELETED_REASON = "entry was deleted from the input stream (XDEL or MAXLEN trimming) before it was processed"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record for :meth:`StreamClient.publish`: a result (``dead=False``) or a dead letter."""

    entry_id: str
    fields: Mapping[str, str]
    dead: bool = False


def connect(url: str, *, timeout_s: float = 10.0) -> aioredis.Redis:
    """An asyncio client for ``url`` (redis://, rediss:// with TLS, password or ACL user in the URL).

    Responses stay bytes, so the input path can detect invalid UTF-8 itself.
    """
    return aioredis.Redis.from_url(
        url, decode_responses=False, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
        health_check_interval=30, retry_on_timeout=False,
    )


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class StreamClient:
    def __init__(self, redis: aioredis.Redis, *, input_stream: str, output_stream: str, dead_stream: str,
                 group: str, consumer: str, output_maxlen: int = 1_000_000, dead_maxlen: int = 100_000) -> None:
        self.redis = redis
        self.input_stream, self.output_stream, self.dead_stream = input_stream, output_stream, dead_stream
        self.group, self.consumer = group, consumer
        self.output_maxlen, self.dead_maxlen = output_maxlen, dead_maxlen
        self._publish = redis.register_script(_PUBLISH_LUA)
        self._autoclaim = redis.register_script(_AUTOCLAIM_LUA)

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def ensure_group(self, start_id: str = "$") -> bool:
        """Create the consumer group (and the stream) when missing; True if it was created."""
        try:
            await self.redis.xgroup_create(self.input_stream, self.group, id=start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise
        return True

    async def read_new(self, count: int, block_ms: int | None) -> list[RawEntry]:
        """New entries for this consumer (XREADGROUP ``>``); ``block_ms`` None: return at once."""
        reply = await self.redis.xreadgroup(self.group, self.consumer, {self.input_stream: ">"},
                                            count=count, block=block_ms)
        return self._entries(reply)

    async def read_own_pending(self, count: int, after: str = "0") -> list[RawEntry]:
        """Entries already delivered to this consumer name and not acked (after a restart)."""
        reply = await self.redis.xreadgroup(self.group, self.consumer, {self.input_stream: after}, count=count)
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

    async def autoclaim(self, min_idle_ms: int, start: str,
                        count: int) -> tuple[str, list[RawEntry], dict[str, int], list[str]]:
        """XAUTOCLAIM entries idle ``min_idle_ms`` or longer, from ``start``.

        Returns (next cursor, claimed entries, their delivery counts, ids of entries that had been
        deleted from the input stream: those are already dead-lettered and acked by this call).
        """
        reply = await self._autoclaim(
            keys=[self.input_stream, self.dead_stream],
            args=[self.group, self.consumer, min_idle_ms, start, count, self.dead_maxlen, DELETED_REASON])
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
        lo, hi = min(ids, key=_id_key), max(ids, key=_id_key)
        rows = await self.redis.xpending_range(self.input_stream, self.group, min=lo, max=hi,
                                               count=max(len(ids) * 4, 100), consumername=self.consumer)
        wanted = set(ids)
        counts = {}
        for row in rows:
            entry_id = _s(cast(bytes, row["message_id"]))
            if entry_id in wanted:
                counts[entry_id] = int(row["times_delivered"])
        return counts

    async def publish(self, records: Sequence[Outgoing]) -> list[bool]:
        """Ack and publish ``records`` atomically; per record, whether it was published by this call."""
        if not records:
            return []
        args: list[str | int] = [self.group, self.output_maxlen, self.dead_maxlen]
        for record in records:
            args += ["d" if record.dead else "r", record.entry_id, len(record.fields)]
            for key, value in record.fields.items():
                args += [key, value]
        flags = await self._publish(keys=[self.input_stream, self.output_stream, self.dead_stream], args=args)
        return [bool(int(f)) for f in flags]

    async def pending_total(self) -> int:
        """Size of the group's pending entries list (all consumers)."""
        info = await self.redis.xpending(self.input_stream, self.group)
        return int(info["pending"])

    async def group_lag(self) -> int | None:
        """Entries not yet delivered to the group (Redis 7+; None where unknown)."""
        with contextlib.suppress(ResponseError):
            for group in await self.redis.xinfo_groups(self.input_stream):
                if _s(group["name"]) == self.group:
                    lag = group.get("lag")
                    return None if lag is None else int(lag)
        return None


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
