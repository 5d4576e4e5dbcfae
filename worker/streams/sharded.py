"""The producer across shards: each comment into its channel's shard (:class:`~.shards.ShardLayout`), each shard's
part exactly once through its own :class:`~.producer.StreamProducer` (one slot per script call).

A checkpoint cannot land with entries of several slots in one step, so each shard keeps its own copy
(``<input>:{k}:<suffix>``), written with that shard's part of the chunk, and every chunk writes it on every shard,
in shard order (a part with no entries carries the checkpoint alone). After a crash the shards hold the
checkpoint of the last chunk (those done) or of the one before (those not reached): the reader resumes from the
last shard's, the oldest, and when the same chunk comes again (the same checkpoint), the shards that had it
already skip their part. A reader whose chunks are drawn the same way again (``push`` of files: chunks by
count) is exact; a followed file that grew since may draw that chunk longer, and then its message ids (the
de-duplication window of ``push --follow`` and ``scrape``) keep the shards that had their part from taking it
twice."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis

from .durable import Durability
from .group import GroupState
from .keys import seen_key
from .producer import Checkpoint, Dedupe, StreamProducer
from .shards import ShardLayout

__all__ = ["ShardedProducer"]

log = logging.getLogger(__name__)


class ShardedProducer:
    """:class:`~.producer.StreamProducer`'s interface over the shards of ``layout`` (one shard on a plain Redis:
    the input stream and the checkpoints as named). ``dedupe_window_s``: the message-id window (0: off)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        layout: ShardLayout,
        *,
        maxlen: int | None = None,
        max_retry_s: float = 120.0,
        dedupe_window_s: float = 0.0,
        durability: Durability | None = None,
    ) -> None:
        self.redis, self.layout, self.stream = redis, layout, layout.streams.input
        self.producers = []
        for k in range(layout.count):
            stream = layout.name(self.stream, k)
            dedupe = Dedupe(seen_key(stream), dedupe_window_s) if dedupe_window_s > 0 else None
            self.producers.append(
                StreamProducer(
                    redis, stream, maxlen=maxlen, max_retry_s=max_retry_s, dedupe=dedupe, durability=durability
                )
            )
        self.last_duplicates: list[int] = []
        self._ahead: dict[str, dict[str, str]] = {}  # a shard's checkpoint copy one chunk past the last shard's

    @property
    def duplicates(self) -> int:
        return sum(p.duplicates for p in self.producers)

    async def ensure_group(self, group: str, start_id: str = "0") -> list[GroupState]:
        return [await p.ensure_group(group, start_id) for p in self.producers]

    async def checkpoint(self, key: str) -> dict[str, str]:
        """The checkpoint ``key`` to resume from: the last shard's copy, the oldest ({} when there is none)."""
        copies = [await p.checkpoint(self.layout.companion(key, k)) for k, p in enumerate(self.producers)]
        oldest = copies[-1]
        for k, copy in enumerate(copies):
            if copy != oldest:
                self._ahead[self.layout.companion(key, k)] = copy
        if self._ahead:
            log.info(
                "%d shards had taken their part of the chunk after the checkpoint: they skip it when it comes again",
                len(self._ahead),
            )
        return oldest

    async def clear(self, key: str) -> None:
        self._ahead.clear()
        for k, p in enumerate(self.producers):
            await p.clear(self.layout.companion(key, k))

    async def add(self, chunk: Sequence[Mapping[str, str]], checkpoint: Checkpoint | None = None) -> list[str]:
        """Add ``chunk`` exactly once, each entry into its shard (and the checkpoint into every shard); returns
        the entry ids ("" for a part a shard had already taken)."""
        ids = [""] * len(chunk)
        self.last_duplicates = []
        for k, positions in self.layout.split(chunk).items():
            mark = None
            if checkpoint is not None:
                mark = Checkpoint(self.layout.companion(checkpoint.key, k), checkpoint.fields)
                if self._ahead.pop(mark.key, None) == dict(checkpoint.fields):
                    continue  # this shard had its part of this chunk before the restart
            if not positions and mark is None:
                continue
            producer = self.producers[k]
            for i, entry_id in zip(positions, await producer.add([chunk[i] for i in positions], mark), strict=True):
                ids[i] = entry_id
            self.last_duplicates += [positions[j] for j in producer.last_duplicates]
        self.last_duplicates.sort()
        return ids
