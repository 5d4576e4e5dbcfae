"""The producer: XADD comments exactly once, riding out Redis faults.

Entries carry ids chosen by the producer and go out in MULTI/EXEC chunks, so after a connection fault the
producer can tell which entries landed (look up their ids and compare the fields) before sending the rest
again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.asyncio as aioredis

from ..errors import RedisCommandError, RedisError, RedisTransientError
from ..wire import parse_entry_id
from .client import ensure_group
from .retry import Retrying, guarded, translate

__all__ = ["StreamProducer"]

log = logging.getLogger(__name__)


def _log_pause(what: str, exc: RedisError, attempt: int, delay_s: float) -> None:
    log.warning("push: redis unavailable (%s); retrying in %.1fs", exc, delay_s)


class StreamProducer:
    """XADD with producer-chosen, increasing ids, in MULTI/EXEC chunks. Transient Redis faults are retried
    for up to ``max_retry_s`` (then :class:`~worker.errors.RedisUnavailableError`)."""

    def __init__(self, redis: aioredis.Redis, stream: str, *, maxlen: int | None = None,
                 max_retry_s: float = 120.0) -> None:
        self.redis, self.stream, self.maxlen, self.max_retry_s = redis, stream, maxlen, max_retry_s
        self._last = (0, 0)
        self._retry = Retrying(base_s=0.1, cap_s=5.0, on_failure=_log_pause)

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

    async def ensure_group(self, group: str) -> None:
        """Create ``group`` at ``$`` before pushing, so a worker started later misses nothing."""
        await self._retry.call("XGROUP CREATE", ensure_group, self.redis, self.stream, group, "$",
                               budget_s=self.max_retry_s)

    async def _missing(self, chunk: list[dict[str, str]], ids: list[str], todo: list[int]) -> list[int]:
        """Of ``todo``, the records not in the stream under their id with their own fields."""
        lo, hi = min((ids[i] for i in todo), key=parse_entry_id), max((ids[i] for i in todo), key=parse_entry_id)
        rows: Any = await guarded("XRANGE", self.redis.xrange(self.stream, lo, hi))
        found = {parse_entry_id(k): v for k, v in rows}
        return [i for i in todo
                if found.get(parse_entry_id(ids[i])) != {k.encode(): v.encode() for k, v in chunk[i].items()}]

    async def _attempt(self, chunk: list[dict[str, str]], ids: list[str], todo: list[int]) -> list[int]:
        """Send ``todo`` in one MULTI/EXEC; returns what is still to send (ids renewed where taken by others)."""
        pipe = self.redis.pipeline(transaction=True)
        for i in todo:
            pipe.xadd(self.stream, chunk[i], id=ids[i], maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
        replies = await guarded("MULTI/XADD/EXEC", pipe.execute(raise_on_error=False))
        failed = [i for i, reply in zip(todo, replies, strict=True) if isinstance(reply, Exception)]
        clash = [i for i in failed if "equal or smaller" in str(replies[todo.index(i)])]
        if len(clash) < len(failed):
            raise translate(replies[todo.index(next(i for i in failed if i not in clash))], "XADD")
        if clash:  # the id is taken: by an earlier attempt of ours, or by another producer
            clash = await self._missing(chunk, ids, clash)
            if clash:
                await self._sync_top()
                for i in clash:
                    ids[i] = self._next_id()
        return clash

    async def add(self, chunk: list[dict[str, str]]) -> list[str]:
        """Add ``chunk`` exactly once; returns the entry ids."""
        ids = [self._next_id() for _ in chunk]
        todo = list(range(len(chunk)))
        uncertain = False  # a fault hid whether the last attempt landed

        async def step() -> None:
            nonlocal todo, uncertain
            try:
                if uncertain:
                    todo = await self._missing(chunk, ids, todo)
                    uncertain = False
                if todo:
                    todo = await self._attempt(chunk, ids, todo)
            except RedisTransientError:
                uncertain = True
                raise

        while todo:
            await self._retry.call("XADD", step, budget_s=self.max_retry_s)
        return ids
