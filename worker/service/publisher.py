"""The publish stage: render each :class:`~worker.service.scorer.Finished` into its stream record, ack and
publish them in one script call per group of records (the commit point), count what was published, and
release the entries from the worker's hands."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from ..streams.client import Outgoing
from ..streams.retry import Retrying
from ..wire import ResultRenderer, entry_time_ms, render_dead_letter
from .metrics import Metrics
from .scorer import Finished

__all__ = ["PublishTarget", "Publisher", "render"]


class PublishTarget(Protocol):
    async def publish(self, records: Sequence[Outgoing]) -> list[bool]: ...


def render(finished: Sequence[Finished], now_ms: int | None = None, *, text: bool = True) -> list[Outgoing]:
    """Stream records for ``finished``, in the same order (results with the comment's text unless ``text`` is
    False)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    records = []
    renderers: dict[int, ResultRenderer] = {}  # one per model in the batch (normally one)
    for item in finished:
        if item.rejection is not None:
            r = item.rejection
            fields = render_dead_letter(r.entry_id, r.error, r.deliveries, r.fields)
            records.append(Outgoing(r.entry_id, fields, dead=True))
        else:
            assert item.comment is not None and item.model is not None and item.probs is not None
            renderer = renderers.get(id(item.model))
            if renderer is None:
                renderer = ResultRenderer(item.model.labels, item.model.tag, text=text)
                renderers[id(item.model)] = renderer
            fields = renderer.render(item.comment, item.labels or [], item.probs.tolist(), now)
            records.append(Outgoing(item.entry_id, fields))
    return records


class Publisher:
    """A queue of outcomes and the task that publishes them (:meth:`run`, until :meth:`close`)."""

    def __init__(self, target: PublishTarget, retry: Retrying, metrics: Metrics,
                 release: Callable[[Iterable[str]], Awaitable[None]], queue_size: int = 4, *,
                 text: bool = True) -> None:
        self.target, self.retry, self.metrics, self._release = target, retry, metrics, release
        self.text = text  # copy each comment's text into its result (settings.output_text)
        self._queue: asyncio.Queue[list[Finished] | None] = asyncio.Queue(maxsize=queue_size)

    async def put(self, finished: list[Finished]) -> None:
        if finished:
            await self._queue.put(finished)

    async def close(self) -> None:
        """No more outcomes: :meth:`run` returns once the queue is published."""
        await self._queue.put(None)

    async def run(self) -> None:
        while (finished := await self._queue.get()) is not None:
            records = render(finished, text=self.text)
            flags = await self.retry.call("publish", self.target.publish, records)
            self.account(finished, flags, now_s=time.time())
            await self._release(r.entry_id for r in records)

    def account(self, finished: Sequence[Finished], flags: Sequence[bool], now_s: float) -> None:
        """Metrics for what the publish script actually published: counters once per batch."""
        m = self.metrics
        skipped = dead = classified = 0
        labels: collections.Counter[tuple[str, str]] = collections.Counter()
        end_to_end = m.end_to_end_seconds
        for item, published in zip(finished, flags, strict=True):
            if not published:
                skipped += 1
            elif item.rejection is not None:
                dead += 1
            else:
                classified += 1
                channel = m.channel_label(item.comment.passthrough.get("channel") if item.comment else None)
                labels.update((label, channel) for label in item.labels or ())
                end_to_end.observe(max(0.0, now_s - entry_time_ms(item.entry_id) / 1000))
        for count, counter in ((skipped, m.duplicates_suppressed), (dead, m.comments.labels(outcome="dead_lettered")),
                               (classified, m.comments.labels(outcome="classified"))):
            if count:
                counter.inc(count)
        for (label, channel), count in labels.items():
            m.labels.labels(label=label, channel=channel).inc(count)
