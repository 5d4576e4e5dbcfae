"""The publish stage: render each finished :class:`~.item.Item` into its stream record, publish and ack them
through their shard's script (the commit point: one call per part of a batch), count what was published, and
release the comments from the worker's hands (:meth:`~.flow.Flow.release`). Ends when its inbox is closed and
empty.

A retraction (a moderator's deletion or ban) is one more kind of record: rendered by :mod:`worker.wire` into an
output-stream entry (``kind=retract``), published and acked by the same script call as the results of its
shard, so each is published exactly once like a result; ``livetopic_retractions{action}`` counts them."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol, cast

import numpy as np

from ..streams.client import Outgoing, Published
from ..streams.retry import Retrying
from ..wire import ResultRenderer, entry_time_ms, render_dead_letter, render_retraction, rounded_scores
from .channel import Channel
from .flow import Flow
from .item import Item, Model
from .metrics import Metrics

__all__ = ["PUBLISH_PART_CHARS", "PublishTarget", "Publisher", "Route"]

log = logging.getLogger(__name__)

# One script call publishes at most about this much (in characters of field names and values; one record more
# when a single record is larger): a Redis at its maxmemory limit checks memory when a script starts (Redis 7)
# or at its first write (6.2), so one call's writes bound how far above the limit Redis can go.
PUBLISH_PART_CHARS = 64 * 1024


def _parts(records: Sequence[Outgoing], max_chars: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive runs of ``records`` of at most ``max_chars`` each (at least one record)."""
    start, size = 0, 0
    for i, record in enumerate(records):
        chars = sum(map(len, record.fields)) + sum(map(len, record.fields.values()))
        if i > start and size + chars > max_chars:
            yield start, i
            start, size = i, 0
        size += chars
    if start < len(records):
        yield start, len(records)


def _rounded(items: Sequence[Item]) -> list[list[float] | None]:
    """Each scored item's scores as its result carries them (None for the rejected and retractions): rounded once
    per model in the batch (normally one), not once per comment."""
    out: list[list[float] | None] = [None] * len(items)
    by_model: dict[int, list[int]] = {}
    for i, item in enumerate(items):
        if item.rejection is None and item.retraction is None:
            by_model.setdefault(id(item.model), []).append(i)
    for positions in by_model.values():
        rows = rounded_scores(np.stack([cast(np.ndarray, items[i].probs) for i in positions]))
        for i, row in zip(positions, rows, strict=True):
            out[i] = row
    return out


class PublishTarget(Protocol):
    async def publish(self, records: Sequence[Outgoing]) -> Published: ...


class Route(Protocol):
    """Where a shard's records go (:class:`~.shard.Shard` is one)."""

    @property
    def client(self) -> PublishTarget: ...

    @property
    def retry(self) -> Retrying: ...


class Publisher:
    """From ``inbox`` to each item's shard in ``routes`` (results carry the comment's text unless ``text`` is
    False: ``--no-output-text``)."""

    def __init__(
        self,
        inbox: Channel[list[Item]],
        routes: Sequence[Route] | Mapping[int, Route],
        flow: Flow,
        metrics: Metrics,
        *,
        text: bool = True,
        replicas: int = 0,
    ) -> None:
        self.inbox, self.flow, self.metrics, self.text, self.replicas = inbox, flow, metrics, text, replicas
        self.routes = dict(routes) if isinstance(routes, Mapping) else dict(enumerate(routes))  # by shard index
        self._renderer: tuple[Model, ResultRenderer] | None = None  # the last model's (normally the only one)

    async def run(self) -> None:
        while (items := await self.inbox.get()) is not None:
            for shard, part in self._by_shard(items):
                await self.publish(shard, part)

    def _by_shard(self, items: list[Item]) -> Iterator[tuple[int, list[Item]]]:
        if len(self.routes) == 1:
            yield next(iter(self.routes)), items
            return
        groups: dict[int, list[Item]] = collections.defaultdict(list)
        for item in items:
            groups[item.shard].append(item)
        yield from groups.items()

    async def publish(self, shard: int, items: Sequence[Item]) -> None:
        """Publish ``items`` through shard ``shard``'s script, in parts; release each part once published."""
        route = self.routes[shard]
        records = self.render(items)
        for start, stop in _parts(records, PUBLISH_PART_CHARS):
            published = await route.retry.call("publish", route.client.publish, records[start:stop])
            self.account(items[start:stop], published.flags, now_s=time.time())
            self.report(records[start:stop], published)
            self.flow.release(r.entry_id for r in records[start:stop])

    def _renderer_of(self, model: Model) -> ResultRenderer:
        if self._renderer is None or self._renderer[0] is not model:
            stages = [(stage.name, stage.model.labels) for stage in model.stages]
            stages += [(head.name, head.labels) for head in model.heads[1:]]
            self._renderer = (model, ResultRenderer(model.labels, model.tag, text=self.text, stages=stages))
        return self._renderer[1]

    def render(self, items: Sequence[Item], now_ms: int | None = None) -> list[Outgoing]:
        """Stream records for ``items``, in the same order: a result, a retraction, or a dead letter."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        records = []
        for item, scores in zip(items, _rounded(items), strict=True):
            if (r := item.rejection) is not None:
                fields = render_dead_letter(r.entry_id, r.error, r.deliveries, r.fields)
                records.append(Outgoing(r.entry_id, fields, dead=True))
                continue
            if (retraction := item.retraction) is not None:
                records.append(Outgoing(item.entry_id, render_retraction(retraction, now)))
                continue
            assert item.comment is not None and item.model is not None and scores is not None
            staged = {name: (labels, rounded_scores(probs[None])[0]) for name, (labels, probs) in item.stages.items()}
            renderer = self._renderer_of(item.model)
            fields = renderer.render_rounded(item.comment, item.labels or [], scores, now, staged)
            records.append(Outgoing(item.entry_id, fields))
        return records

    def report(self, records: Sequence[Outgoing], published: Published) -> None:
        """Count and say what the commit point found out of the ordinary (see :class:`Published`)."""
        span = f"ids {records[0].entry_id} … {records[-1].entry_id}"
        if published.replicas is not None and published.replicas < self.replicas:
            log.warning(
                "%s: only %d of %d replicas acknowledged the publish within --wait-timeout-ms (a failover now "
                "may take it back: delivered again, published once)",
                span,
                published.replicas,
                self.replicas,
            )
        if published.lost:
            self.metrics.unpending_published.inc(published.lost)
            log.warning(
                "%d comments of this batch (%s) were in no consumer's pending list (a consumer deleted with "
                "XGROUP DELCONSUMER, or the group recreated): not finished, so published once all the same",
                published.lost,
                span,
            )
        if published.repeated:
            log.warning(
                "%d comments of this batch (%s) were delivered again though finished (the group was moved "
                "back or recreated at an earlier id): acked, not published again",
                published.repeated,
                span,
            )
        if published.moved:
            self.metrics.group_moved.labels(reason=published.moved).inc()
            log.warning(
                "the consumer group was %s its resume mark %s: moved to it",
                "behind" if published.moved == "behind" else "past comments it lost, after",
                published.mark,
            )

    def account(self, items: Sequence[Item], flags: Sequence[bool], now_s: float) -> None:
        """Metrics for what the publish script actually published: counters once per part."""
        m = self.metrics
        skipped = dead = classified = 0
        labels: collections.Counter[tuple[str, str, str]] = collections.Counter()
        retracted: collections.Counter[str] = collections.Counter()
        end_to_end = m.end_to_end_seconds
        for item, published in zip(items, flags, strict=True):
            if not published:
                skipped += 1
            elif item.rejection is not None:
                dead += 1
            elif item.retraction is not None:
                retracted[item.retraction.action] += 1
            else:
                classified += 1
                channel = m.channel_label(item.comment.passthrough.get("channel") if item.comment else None)
                first = item.model.stage_name if item.model is not None else "model"
                labels.update((label, channel, first) for label in item.labels or ())
                for stage, (stage_labels, _) in item.stages.items():
                    labels.update((label, channel, stage) for label in stage_labels)
                end_to_end.observe(max(0.0, now_s - entry_time_ms(item.entry_id) / 1000))
        for count, counter in (
            (skipped, m.duplicates_suppressed),
            (dead, m.comments.labels(outcome="dead_lettered")),
            (classified, m.comments.labels(outcome="classified")),
        ):
            if count:
                counter.inc(count)
        for (label, channel, stage), count in labels.items():
            m.labels.labels(label=label, channel=channel, stage=stage).inc(count)
        for action, count in retracted.items():
            m.retractions.labels(action=action).inc(count)
