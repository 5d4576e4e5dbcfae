"""The dashboard's live side: follow the output stream into an :class:`~worker.web.aggregate.Aggregator`
(its history first, then new entries), poll the health of the pipeline, and tick at most a few times a
second so that pages get updates at that pace whatever the comment rate.

Every task is kept by :class:`Live`; :meth:`Live.run` ends with the first task's error. Redis faults are
retried (the page shows ``redis`` as unreachable meanwhile), never fatal.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from ..errors import RedisError, RedisTransientError
from ..settings import StreamNames
from ..streams.info import GroupState, group_state, total_group_state
from ..streams.reading import count_since, follow_all, lengths, lookup, scan
from ..streams.retry import Backoff, sleep_or_stop, with_backoff
from ..streams.shards import ShardLayout
from .aggregate import WINDOWS, Aggregator, clip_text
from .message import MAX_VIEW_BYTES, encode_view
from .options import DashboardOptions

__all__ = ["Live"]

log = logging.getLogger("livetopic.dashboard")

MAX_CACHED_VIEWS = 32  # views kept for the current tick (each at most MAX_VIEW_BYTES); others are made per request


READ_COUNT = 250  # entries per XREAD / XRANGE page: what is held at once while reading (not the view)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Live:
    def __init__(
        self,
        redis: aioredis.Redis,
        streams: StreamNames,
        options: DashboardOptions,
        *,
        health_interval_s: float = 2.0,
        clock: Callable[[], int] = _now_ms,
        layout: ShardLayout | None = None,
    ) -> None:
        self.redis, self.streams, self.options, self.clock = redis, streams, options, clock
        self.layout = layout or ShardLayout(streams)
        self.inputs = self.layout.all(streams.input)
        self.outputs = {name: k for k, name in enumerate(self.layout.all(streams.output))}  # name → shard
        self.positions = dict.fromkeys(self.outputs, "0-0")  # the last entry read of each shard's output
        self.health_interval_s = health_interval_s
        self.board = Aggregator(max_channels=options.max_channels, feed_size=max(options.feed_size, 1))
        self.history_loaded = False
        self.redis_ok = False
        self.answers = 0  # Redis replies so far: a guarded task that got one was working (its back-off starts over)
        self.group = GroupState(exists=False)
        self.dead_per_min: int | None = None
        self.dead_total: int | None = None
        self.tick = 0
        self._tick_changed = asyncio.Condition()
        self._views: dict[tuple[str, str], bytes] = {}
        self._views_tick = -1

    # --- tasks --------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Follow, poll and tick until ``stop`` is set (or a task fails: its error is raised)."""
        tasks = [
            asyncio.create_task(c, name=n)
            for n, c in (
                ("follow", self._guard(self._follow, stop)),
                ("health", self._guard(self._poll_health, stop)),
                ("tick", self._ticker(stop)),
            )
        ]
        stopper = asyncio.create_task(stop.wait(), name="stop")
        try:
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and not stop.is_set():
                    task.result()  # a failed task's error; a finished one is a bug
                    raise RuntimeError(f"dashboard task {task.get_name()} ended early")
        finally:
            for task in [*tasks, stopper]:
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)

    async def _guard(self, body: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event) -> None:
        """Run ``body`` again after transient Redis faults (with back-off), until ``stop``."""

        def failed(exc: Exception, _attempt: int, delay_s: float) -> None:
            self.redis_ok = False
            log.warning("dashboard: redis unavailable (%s); retrying in %.1fs", exc, delay_s)

        await with_backoff(
            functools.partial(body, stop),
            transient=lambda exc: isinstance(exc, RedisTransientError),
            on_failure=failed,
            backoff=Backoff(base_s=0.1, cap_s=5.0),
            stop=stop,
            progress=lambda: self.answers,
        )

    def _answered(self) -> None:
        self.redis_ok = True
        self.answers += 1

    async def _follow(self, stop: asyncio.Event) -> None:
        board, positions = self.board, self.positions
        board.prune(self.clock())
        if not self.history_loaded:
            for stream, shard in self.outputs.items():
                async for entry_id, fields in scan(self.redis, stream, start=f"({positions[stream]}", page=READ_COUNT):
                    self._answered()
                    board.add(entry_id, fields, shard)
                    positions[stream] = entry_id
            self.history_loaded = True
            self._answered()
            log.info("dashboard: history read, %d entries up to %s", board.ingested, board.last_id)
        while not stop.is_set():
            rows = await follow_all(self.redis, dict(positions), count=READ_COUNT, block_ms=500)
            self._answered()
            for stream, entry_id, fields in rows:
                board.add(entry_id, fields, self.outputs[stream])
                positions[stream] = entry_id

    async def _poll_health(self, stop: asyncio.Event) -> None:
        streams, dead = self.streams, self.layout.all(self.streams.dead_letter)
        while not stop.is_set():
            self.group = total_group_state([await group_state(self.redis, name, streams.group) for name in self.inputs])
            self.dead_per_min = sum([await count_since(self.redis, name, self.clock() - 60_000) for name in dead])
            self.dead_total = sum([(await lengths(self.redis, name))[0] for name in dead])
            self._answered()
            await sleep_or_stop(self.health_interval_s, stop)

    async def _ticker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.board.prune(self.clock())
            async with self._tick_changed:
                self.tick += 1
                self._tick_changed.notify_all()
            await sleep_or_stop(self.options.update_interval_s, stop)

    async def next_tick(self, seen: int) -> int:
        """Wait for a tick after ``seen``; returns its number."""
        async with self._tick_changed:
            await self._tick_changed.wait_for(lambda: self.tick > seen)
            return self.tick

    # --- views --------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        g = self.group
        return {
            "redis": self.redis_ok,
            "loading": not self.history_loaded,
            "group": {
                "exists": g.exists,
                "lag": g.lag,
                "lag_capped": g.lag_capped,
                "pending": g.pending,
                "consumers": g.consumers,
            },
            "dead_per_min": self.dead_per_min,
            "dead_total": self.dead_total,
            "models": dict(sorted(self.board.models.items(), key=lambda kv: -kv[1])),
            "latency_ms": self.board.latency(),
            "ingested": self.board.ingested,
            "malformed": self.board.malformed,
            "retractions": self.board.retractions,
            "retracted": self.board.retracted,
            "last_id": self.board.last_id,
        }

    async def _fill_texts(self, items: list[Any]) -> None:
        wanted = [item for item in items if item.text is None and not item.text_missing]
        for shard, stream in enumerate(self.inputs):
            mine = [item for item in wanted if item.shard == shard]
            if not mine:
                continue
            try:
                texts = await lookup(self.redis, stream, [item.source_id for item in mine])
            except RedisError as exc:
                log.warning("dashboard: cannot look up comment texts (%s)", exc)
                return
            for item in mine:
                if item.source_id in texts:
                    text = texts[item.source_id]
                    item.text, item.text_missing = (clip_text(text) or ""), text is None

    async def encoded_view(self, channel: str, window: str) -> bytes:
        """:meth:`view` as JSON of at most :data:`~worker.web.message.MAX_VIEW_BYTES`, made once per tick for
        all pages alike (up to :data:`MAX_CACHED_VIEWS` of them; a channel that does not exist is not kept)."""
        tick = self.tick
        if self._views_tick != tick:
            self._views, self._views_tick = {}, tick
        key = (channel, window)
        cached = self._views.get(key)
        if cached is not None:
            return cached
        data = encode_view(await self.view(channel, window), MAX_VIEW_BYTES)
        if self._views_tick == tick and channel in self.board.channels and len(self._views) < MAX_CACHED_VIEWS:
            self._views[key] = data  # (not when a tick came while the texts were looked up)
        return data

    async def view(self, channel: str, window: str) -> dict[str, Any]:
        """What a page shows for ``channel`` over ``window`` (unbounded in bytes: see :meth:`encoded_view`)."""
        if window not in WINDOWS:
            window = "15m"
        now = self.clock()
        items = self.board.feed(channel, self.options.feed_size)
        await self._fill_texts(items)
        view = {
            "now": now,
            "tick": self.tick,
            "channel": channel,
            "window": window,
            "labels": list(self.board.labels.names),
            "layers": self.board.layers(),
            "channels": self.board.channel_list(now),
            **self.board.heat(channel, window, now),
            "feed": [item.view() for item in items],
            "health": self.health(),
        }
        return view
