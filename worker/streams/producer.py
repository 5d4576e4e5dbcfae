"""The producer: XADD comments exactly once, riding out Redis faults.

Entries carry ids chosen by the producer and go out in chunks through one server-side script, which lands a
chunk whole or not at all: it XADDs every entry (or none, when an id is already taken) and, in the same
step, may

- skip an entry whose message id (its ``id`` field) it saw from the same source within a window (``dedupe``:
  a sorted set of source and id, trimmed to the window and expiring with it), so a source that sends a
  message again (a reconnect, a restart, a rewritten file) pushes it once, while two channels whose
  scrapers number messages alike keep each other's;
- record a checkpoint (a hash: e.g. how far into a file the chunk reaches), so a reader that restarts from
  its checkpoint pushes nothing twice and misses nothing.

After a connection fault the producer looks its ids up (comparing the fields) before sending again: a chunk
whose reply was lost is found in the stream and not sent twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from ..errors import RedisCommandError, RedisError, RedisTransientError
from ..wire import parse_entry_id
from .durable import Durability, run_script
from .group import GroupState, ensure_group
from .positions import clear_checkpoint, read_checkpoint
from .retry import Retrying, guarded
from .scripts import KEY_CHECKS_LUA

__all__ = ["PRODUCE_LUA", "Checkpoint", "Dedupe", "StreamProducer", "dedupe_member"]

log = logging.getLogger(__name__)

# KEYS: the stream, then the seen-ids set (mode has "s"), then the checkpoint hash (mode has "p").
# ARGV: mode, maxlen (0: none), window_ms, now_ms, n, then per entry: id, dedupe member ("" none), nfields,
# field, value…; then nfields, field, value… of the checkpoint. Returns {"ok", {1 added | 0 duplicate…}} or
# {"clash", error} when the first id is taken (then nothing was written: the ids rise within a chunk). Any
# other error of the first XADD (OOM at maxmemory…) is returned as the error itself, before any write, and so is
# a key of the wrong type (checked first): the caller retries what is transient.
PRODUCE_LUA = (
    KEY_CHECKS_LUA
    + """
local mode = ARGV[1]
local stream, seen, pos = KEYS[1], nil, nil
local k = 2
if string.find(mode, 's', 1, true) then seen = KEYS[k]; k = k + 1 end
if string.find(mode, 'p', 1, true) then pos = KEYS[k] end
local err = check_stream(stream, 'input stream') or (seen and check_type(seen, 'zset', 'de-duplication window'))
            or (pos and check_type(pos, 'hash', 'checkpoint'))  -- before any write
if err then return err end
local maxlen, window, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local i = 6
local flags = {}
local wrote = false
for e = 1, n do
  local id, mid, nf = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local args = {'XADD', stream}
  if maxlen > 0 then args[#args + 1] = 'MAXLEN'; args[#args + 1] = '~'; args[#args + 1] = maxlen end
  args[#args + 1] = id
  for f = 1, nf * 2 do args[#args + 1] = ARGV[i + 2 + f] end
  i = i + 3 + nf * 2
  local dup = false
  if seen and mid ~= '' then
    local score = redis.call('ZSCORE', seen, mid)
    dup = score ~= false and tonumber(score) > now - window
  end
  if dup then
    flags[e] = 0
  else
    local reply = redis.pcall(unpack(args))
    if type(reply) == 'table' and reply.err then
      if wrote or not string.find(reply.err, 'equal or smaller', 1, true) then
        return redis.error_reply(reply.err)
      end
      return {'clash', reply.err}
    end
    wrote = true
    if seen and mid ~= '' then redis.call('ZADD', seen, now, mid) end
    flags[e] = 1
  end
end
if pos then
  local nf = tonumber(ARGV[i])
  local args = {'HSET', pos}
  for f = 1, nf * 2 do args[#args + 1] = ARGV[i + f] end
  if nf > 0 then redis.call(unpack(args)) end
end
if seen then
  redis.call('ZREMRANGEBYSCORE', seen, '-inf', '(' .. (now - window))
  redis.call('PEXPIRE', seen, window)
end
return {'ok', flags}
"""
)


@dataclass(frozen=True, slots=True)
class Dedupe:
    """Skip an entry whose ``id`` field was pushed from the same source within ``window_s`` (kept in the sorted
    set ``key``). The source is the entry's ``channel``, or where it has none, the checkpoint it is pushed with
    (a followed file's), or else the producer itself."""

    key: str
    window_s: float = 3600.0


def dedupe_member(fields: Mapping[str, str], source: str) -> str:
    """The de-duplication window's member for an entry: its source and its message id ("" when it has none)."""
    message_id = fields.get("id", "")
    return f"{fields.get('channel') or source}\x1f{message_id}" if message_id else ""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Fields written to the hash ``key`` in the same step as the chunk's entries."""

    key: str
    fields: Mapping[str, str]


def _log_pause(what: str, exc: RedisError, attempt: int, delay_s: float) -> None:
    log.warning("push: redis unavailable (%s); retrying in %.1fs", exc, delay_s)


class StreamProducer:
    """XADD with producer-chosen, increasing ids, a chunk at a time through :data:`PRODUCE_LUA`. Transient
    Redis faults are retried for up to ``max_retry_s`` (then :class:`~worker.errors.RedisUnavailableError`).
    ``duplicates`` counts the entries skipped by ``dedupe``; ``last_duplicates`` lists those of the last
    :meth:`add` (their indices in its chunk)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        stream: str,
        *,
        maxlen: int | None = None,
        max_retry_s: float = 120.0,
        dedupe: Dedupe | None = None,
        durability: Durability | None = None,
    ) -> None:
        self.redis, self.stream, self.maxlen, self.max_retry_s = redis, stream, maxlen, max_retry_s
        self.dedupe, self.durability = dedupe, durability or Durability()
        self.duplicates = 0
        self.last_duplicates: list[int] = []
        self._last = (0, 0)
        self._retry = Retrying(base_s=0.1, cap_s=5.0, on_failure=_log_pause)
        self._script = redis.register_script(PRODUCE_LUA)

    def _next_id(self) -> str:
        ms = max(int(time.time() * 1000), self._last[0])
        seq = self._last[1] + 1 if ms == self._last[0] else 0
        self._last = (ms, seq)
        return f"{ms}-{seq}"

    async def _sync_top(self) -> None:
        try:
            info = await guarded("XINFO STREAM", self.redis.xinfo_stream(self.stream))
        except RedisCommandError:
            return  # no such stream yet
        self._last = max(self._last, parse_entry_id(info["last-generated-id"]))

    async def checkpoint(self, key: str) -> dict[str, str]:
        """The checkpoint ``key`` ({} when there is none)."""
        return await self._retry.call("HGETALL", read_checkpoint, self.redis, key, budget_s=self.max_retry_s)

    async def clear(self, key: str) -> None:
        """Remove the checkpoint ``key`` (its reader finished)."""
        await self._retry.call("DEL", clear_checkpoint, self.redis, key, budget_s=self.max_retry_s)

    async def ensure_group(self, group: str, start_id: str = "0") -> GroupState:
        """Make sure ``group`` exists before pushing (at its resume mark; at ``start_id`` for a stream no worker
        served), so a worker started later misses nothing; says so when it had to move or skip."""
        state = await self._retry.call(
            "ensure group", ensure_group, self.redis, self.stream, group, start_id, budget_s=self.max_retry_s
        )
        if (warning := state.warning()) is not None:
            log.warning("%s", warning)
        return state

    async def _missing(self, chunk: Sequence[Mapping[str, str]], ids: list[str], todo: list[int]) -> list[int]:
        """Of ``todo``, the records not in the stream under their id with their own fields."""
        if not todo:
            return []
        lo, hi = min((ids[i] for i in todo), key=parse_entry_id), max((ids[i] for i in todo), key=parse_entry_id)
        rows: Any = await guarded("XRANGE", self.redis.xrange(self.stream, lo, hi))
        found = {parse_entry_id(k): v for k, v in rows}
        return [
            i
            for i in todo
            if found.get(parse_entry_id(ids[i])) != {k.encode(): v.encode() for k, v in chunk[i].items()}
        ]

    def _call(
        self, chunk: Sequence[Mapping[str, str]], ids: list[str], todo: list[int], checkpoint: Checkpoint | None
    ) -> tuple[list[str], list[str | int | float]]:
        keys, mode = [self.stream], ""
        if self.dedupe is not None:
            keys.append(self.dedupe.key)
            mode += "s"
        if checkpoint is not None:
            keys.append(checkpoint.key)
            mode += "p"
        window_ms = int(self.dedupe.window_s * 1000) if self.dedupe else 0
        args: list[str | int | float] = [mode, self.maxlen or 0, window_ms, int(time.time() * 1000), len(todo)]
        source = checkpoint.key if checkpoint is not None else ""
        for i in todo:
            args += [ids[i], dedupe_member(chunk[i], source) if self.dedupe else "", len(chunk[i])]
            for key, value in chunk[i].items():
                args += [key, value]
        marks = dict(checkpoint.fields) if checkpoint is not None else {}
        args.append(len(marks))
        for key, value in marks.items():
            args += [key, value]
        return keys, args

    async def _attempt(
        self, chunk: Sequence[Mapping[str, str]], ids: list[str], todo: list[int], checkpoint: Checkpoint | None
    ) -> list[int]:
        """Send ``todo`` (and the checkpoint) in one script call; returns what is still to send (ids renewed
        where another producer took them)."""
        keys, args = self._call(chunk, ids, todo, checkpoint)
        reply, replicas = await run_script(self.redis, self._script, keys, args, self.durability, "produce script")
        if replicas is not None and replicas < self.durability.replicas:
            log.warning(
                "push: only %d of %d replicas acknowledged a chunk within --wait-timeout-ms (a failover now "
                "may lose it)",
                replicas,
                self.durability.replicas,
            )
        status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if status == "ok":
            skipped = [i for i, flag in zip(todo, reply[1], strict=True) if not int(flag)]
            self.duplicates += len(skipped)
            self.last_duplicates += skipped
            return []
        error = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        if "equal or smaller" not in error:
            raise RedisCommandError(f"redis XADD: {error}", "XADD")
        if len(await self._missing(chunk, ids, todo)) < len(todo):
            # our own chunk is there, whole (one script): it landed on an attempt whose reply was lost and that
            # the client sent again by itself (redis-py retries a command after a connection fault, a failover)
            return []
        await self._sync_top()  # another producer wrote past our ids: take new ones above its last
        for i in todo:
            ids[i] = self._next_id()
        return todo

    async def add(self, chunk: Sequence[Mapping[str, str]], checkpoint: Checkpoint | None = None) -> list[str]:
        """Add ``chunk`` exactly once (and write ``checkpoint`` with it); returns the entry ids (an entry
        skipped as a duplicate has none in the stream)."""
        ids = [self._next_id() for _ in chunk]
        todo = list(range(len(chunk)))
        self.last_duplicates = []
        pending = True  # the script still has to run (a chunk without entries may still carry a checkpoint)
        uncertain = False  # a fault hid whether the last attempt landed

        async def step() -> None:
            nonlocal todo, uncertain, pending
            try:
                if uncertain:
                    left = await self._missing(chunk, ids, todo)
                    pending = bool(left) or not todo  # all found: that attempt landed, checkpoint included
                    todo, uncertain = left, False
                if pending:
                    todo = await self._attempt(chunk, ids, todo, checkpoint)
                    pending = bool(todo)
            except RedisTransientError:
                uncertain = True
                raise

        while pending:
            await self._retry.call("XADD", step, budget_s=self.max_retry_s)
        return ids
