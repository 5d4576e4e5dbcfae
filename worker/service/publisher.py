"""The publish stage: render each :class:`~worker.service.scorer.Finished` into its stream record, ack and
publish them in one script call per group of records (the commit point), count what was published, and
release the entries from the worker's hands."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Protocol

from ..streams.client import Outgoing, Published
from ..streams.retry import Retrying
from ..wire import ResultRenderer, entry_time_ms, render_dead_letter
from .metrics import Metrics
from .scorer import Finished

__all__ = ["PublishTarget", "Publisher", "render"]

log = logging.getLogger(__name__)


# One script call publishes at most about this much (in characters of field names and values; one record more
# when a single record is larger): a Redis at its maxmemory limit checks memory when a script starts (Redis 7)
# or at its first write (6.2), so one call's writes bound how far above the limit Redis can go.
PUBLISH_PART_CHARS = 64 * 1024


def _parts(records: Sequence[Outgoing], max_chars: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive runs of ``records`` of at most ``max_chars`` each (at least one record)."""
    start, size = 0, 0
    for i, record in enumerate(records):
        chars = sum(len(k) + len(v) for k, v in record.fields.items())
        if i > start and size + chars > max_chars:
            yield start, i
            start, size = i, 0
        size += chars
    if start < len(records):
        yield start, len(records)


class PublishTarget(Protocol):
    async def publish(self, records: Sequence[Outgoing]) -> Published: ...


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
            for start, stop in _parts(records, PUBLISH_PART_CHARS):
                published = await self.retry.call("publish", self.target.publish, records[start:stop])
                self.account(finished[start:stop], published.flags, now_s=time.time())
                self.report(records[start:stop], published)
                await self._release(r.entry_id for r in records[start:stop])

    def report(self, records: Sequence[Outgoing], published: Published) -> None:
        """Count and say what the commit point found out of the ordinary (see :class:`Published`)."""
        span = f"ids {records[0].entry_id} … {records[-1].entry_id}"
        if published.lost:
            self.metrics.unpending_published.inc(published.lost)
            log.warning("%d comments of this batch (%s) were in no consumer's pending list (a consumer deleted with "
                        "XGROUP DELCONSUMER, or the group recreated): not finished, so published once all the same",
                        published.lost, span)
        if published.repeated:
            log.warning("%d comments of this batch (%s) were delivered again though finished (the group was moved "
                        "back or recreated at an earlier id): acked, not published again", published.repeated, span)
        if published.moved:
            self.metrics.group_moved.labels(reason=published.moved).inc()
            log.warning("the consumer group was %s its resume mark %s: moved to it",
                        "behind" if published.moved == "behind" else "past comments it lost, after",
                        published.mark)

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
