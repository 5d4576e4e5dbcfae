"""The dashboard's state, built from output-stream entries: per channel (and for all channels together)
comment and label counts in time buckets, whole-stream totals, the latest comments, the model versions seen
and recent end-to-end latencies. Pure Python (no asyncio, no Redis), bounded memory:

- fine buckets (:data:`FINE_MS`) only for the longest window (:data:`HORIZON_MS`), older ones dropped;
- whole-stream buckets that widen instead of growing (:class:`~worker.web.buckets.MergingBuckets`);
- at most ``max_channels`` channels, the others counted together as :data:`OTHER`;
- at most ``feed_size`` comments per channel, ``max_labels`` labels, :data:`MAX_MODELS` model tags and
  :data:`LATENCY_SAMPLES` latencies;
- every string taken from an entry cut short: channel and user names, ``ts`` and model tags to
  :data:`MAX_NAME_CHARS` characters (the worker's passthrough limit), label names to :data:`MAX_LABEL_CHARS`,
  feed texts to :data:`MAX_FEED_TEXT_CHARS` (with "…"); a ``source_id`` that is no entry id is not looked up.
  An output stream may hold anything (an older worker, another producer), so the dashboard does not rely on
  the worker's limits.

A comment's time is its input entry id's (``source_id``): when it entered the input stream.

Retractions (output entries with ``kind=retract``: a moderator deleted a comment, or banned or timed out its
author) are subtracted (:mod:`.retracted`): each comment they remove leaves every count it was in (the recent
buckets, the whole-stream buckets, the totals, of its channel and of all channels) and the feed. The aggregator
remembers the newest :data:`REMEMBERED` comments that carry an ``id`` or ``author_id`` (and as many retractions
of each kind, for the comments whose result comes after their retraction); a retraction of an older comment
removes nothing.

**Layers.** The results of a pipeline version carry each further stage's labels (``game_labels``…): they are
counted as labels of their own, ``game:Player``, in the same buckets, and :meth:`Aggregator.layers` says which
labels belong to which layer (``""``: the first stage's ``labels``), so that the page can switch between layers.
At most :data:`MAX_LAYERS` layers.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..wire import MAX_PASSTHROUGH_CHARS, entry_time_ms
from .buckets import LabelIndex, MergingBuckets, RecentBuckets, Row, new_row, subtract
from .retracted import Ledger, is_retraction, order_of, retraction_of

__all__ = [
    "ALL",
    "FINE_MS",
    "HORIZON_MS",
    "MAX_FEED_TEXT_CHARS",
    "MAX_LABEL_CHARS",
    "MAX_LAYERS",
    "MAX_NAME_CHARS",
    "NONE",
    "OTHER",
    "REMEMBERED",
    "WINDOWS",
    "Aggregator",
    "ChannelHeat",
    "FeedItem",
    "clip_text",
]

FINE_MS = 5_000
HORIZON_MS = 60 * 60_000
# window name → (span ms, display step ms); None: the whole stream
WINDOWS: dict[str, tuple[int, int] | None] = {
    "5m": (5 * 60_000, 5_000),
    "15m": (15 * 60_000, 15_000),
    "60m": (HORIZON_MS, 60_000),
    "all": None,
}
ALL = ""  # the channel key of all channels together
OTHER = "(other)"  # channels beyond the cap
NONE = "(none)"  # entries without a channel field
MAX_MODELS = 16
MAX_LAYERS = 8
_STAGE_LABELS, _STAGE_SCORES = "_labels", "_scores"
LATENCY_SAMPLES = 4096
MAX_POINTS = 240  # whole-stream series are regrouped to at most this many points
MAX_NAME_CHARS = MAX_PASSTHROUGH_CHARS  # channel, user, ts, model tag
MAX_LABEL_CHARS = 64
MAX_FEED_TEXT_CHARS = 500
_ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
REMEMBERED = 50_000  # comments a retraction can still remove (~30 MB measured; ~60 MB when each has 64 labels)
Counted = tuple[str, int, tuple[int, ...], str]  # what a retraction subtracts: channel key, time, labels, source


def clip_text(text: str | None) -> str | None:
    """A feed text cut to :data:`MAX_FEED_TEXT_CHARS` characters (and "…")."""
    if text is None or len(text) <= MAX_FEED_TEXT_CHARS:
        return text
    return text[:MAX_FEED_TEXT_CHARS] + "…"


@dataclass(slots=True)
class FeedItem:
    entry_id: str
    source_id: str
    time_ms: int
    channel: str
    labels: list[str]
    user: str = ""
    ts: str = ""
    text: str | None = None  # None until looked up in the input stream
    text_missing: bool = False
    shard: int = 0  # whose input stream holds source_id

    def view(self) -> dict[str, Any]:
        return {
            "id": self.source_id,
            "time": self.time_ms,
            "channel": self.channel,
            "user": self.user,
            "ts": self.ts,
            "labels": self.labels,
            "text": self.text or "",
            "missing": self.text_missing,
        }


@dataclass(slots=True)
class ChannelHeat:
    recent: RecentBuckets
    whole: MergingBuckets
    totals: Row = field(default_factory=new_row)
    feed: deque[FeedItem] = field(default_factory=deque)

    def add(self, time_ms: int, indices: Sequence[int], item: FeedItem) -> None:
        self.recent.add(time_ms, indices)
        self.whole.add(time_ms, indices)
        totals = self.totals
        totals[0] += 1
        for i in indices:
            if i >= len(totals):
                totals.extend([0] * (i + 1 - len(totals)))
            totals[i] += 1
        self.feed.append(item)

    def remove(self, time_ms: int, indices: Sequence[int], source_id: str) -> None:
        """Take back what :meth:`add` counted (a retracted comment), and its feed item."""
        self.recent.remove(time_ms, indices)
        self.whole.remove(time_ms, indices)
        subtract(self.totals, indices)
        for item in self.feed:
            if item.source_id == source_id:
                self.feed.remove(item)
                break


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


class Aggregator:
    def __init__(self, *, max_channels: int = 50, feed_size: int = 50, max_labels: int = 64) -> None:
        self.max_channels, self.feed_size = max_channels, feed_size
        self.labels = LabelIndex(max_labels)
        self.channels: dict[str, ChannelHeat] = {ALL: self._heat()}
        self.models: dict[str, int] = {}
        self._layer_of: dict[str, str] = {}  # a label name (as counted) → its layer ("": the first stage's)
        self._layers: list[str] = [""]
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.ingested = 0
        self.malformed = 0
        self.retractions = 0  # retraction entries read
        self.retracted = 0  # comments they removed (or kept out, when the retraction came first)
        self.ledger: Ledger[Counted] = Ledger(REMEMBERED)
        self.last_id = "0-0"

    def _heat(self) -> ChannelHeat:
        return ChannelHeat(
            RecentBuckets(FINE_MS, HORIZON_MS), MergingBuckets(60_000), feed=deque(maxlen=self.feed_size)
        )

    def _channel(self, name: str) -> str:
        """The key of ``name``'s counts (:data:`OTHER` past the cap), made when new."""
        if name not in self.channels:
            real = len(self.channels) - 1 - (OTHER in self.channels)
            if real >= self.max_channels and name != OTHER:
                return self._channel(OTHER)
            self.channels[name] = self._heat()
        return name

    def _name(self, layer: str, label: object) -> str | None:
        """The label ``label`` of ``layer`` as counted (``layer:label`` for a further stage), or None past
        :data:`MAX_LAYERS` layers."""
        if layer not in self._layers:
            if len(self._layers) >= MAX_LAYERS:
                return None
            self._layers.append(layer)
        name = str(label)[:MAX_LABEL_CHARS] if not layer else f"{layer}:{label}"[:MAX_LABEL_CHARS]
        if name not in self._layer_of and len(self._layer_of) < self.labels.cap:
            self._layer_of[name] = layer
        return name

    def _indices(self, layer: str, labels: Sequence[object]) -> list[int]:
        names = (self._name(layer, x) for x in labels[: self.labels.cap])
        return [i for i in (self.labels.index(n) for n in names if n is not None) if i]

    @staticmethod
    def _layer_fields(fields: Mapping[str, str], suffix: str) -> list[tuple[str, str]]:
        """(layer, value) of the fields ``<layer><suffix>`` (a pipeline's further stages), the first stage's as
        layer ``""``."""
        out = [("", fields[suffix[1:]])] if suffix[1:] in fields else []
        return out + [(k[: -len(suffix)][:MAX_LABEL_CHARS], v) for k, v in fields.items() if k.endswith(suffix)]

    def _model(self, tag: str, fields: Mapping[str, str]) -> None:
        if tag in self.models:
            self.models[tag] += 1
            return
        for layer, scores in self._layer_fields(fields, _STAGE_SCORES):  # a new model's label order, each layer's
            try:
                order = json.loads(scores)
            except ValueError:
                order = {}
            if isinstance(order, dict):
                self._indices(layer, list(itertools.islice(order, self.labels.cap)))
        key = tag if len(self.models) < MAX_MODELS else OTHER
        self.models[key] = self.models.get(key, 0) + 1

    def add(self, entry_id: str, fields: Mapping[str, str], shard: int = 0) -> None:
        """Count one output entry (of shard ``shard``'s output stream; a retraction: take back what it removes)."""
        self.last_id = entry_id
        if is_retraction(fields):
            self._retract(fields)
            return
        try:
            labels = json.loads(fields["labels"])
            if not isinstance(labels, list):
                raise ValueError("labels is not a list")
        except (KeyError, ValueError):
            self.malformed += 1
            return
        self.ingested += 1
        source = fields.get("source_id") or entry_id
        is_id = _ENTRY_ID.fullmatch(source) is not None
        source = source if is_id else source[:MAX_NAME_CHARS]
        time_ms = (entry_time_ms(source) if is_id else 0) or entry_time_ms(entry_id)
        self._model(fields.get("model", "")[:MAX_NAME_CHARS], fields)
        latency = fields.get("latency_ms")
        if latency:
            with contextlib.suppress(ValueError):
                self.latencies.append(float(latency))
        # labels past the index's cap are neither counted nor shown
        indices = self._indices("", labels)
        for layer, value in self._layer_fields(fields, _STAGE_LABELS)[1:]:
            with contextlib.suppress(ValueError):
                stage_labels = json.loads(value)
                if isinstance(stage_labels, list):
                    indices += self._indices(layer, stage_labels)
        names = self.labels.names  # the index's own strings: feed items share them
        channel = (fields.get("channel") or NONE)[:MAX_NAME_CHARS]
        text = clip_text(fields.get("text"))
        item = FeedItem(
            entry_id,
            source,
            time_ms,
            channel,
            [names[i - 1] for i in indices],
            fields.get("user", "")[:MAX_NAME_CHARS],
            fields.get("ts", "")[:MAX_NAME_CHARS],
            text,
            text_missing=text is None and not is_id,
            shard=shard,
        )
        key = self._channel(channel)
        order = order_of(source) if is_id else None
        if order is not None and not self.ledger.comment(
            order,
            channel,
            fields.get("id", "")[:MAX_NAME_CHARS],
            fields.get("author_id", "")[:MAX_NAME_CHARS],
            (key, time_ms, tuple(indices), source),
        ):
            self.retracted += 1  # its retraction came first
            return
        self.channels[key].add(time_ms, indices, item)
        self.channels[ALL].add(time_ms, indices, item)

    def _retract(self, fields: Mapping[str, str]) -> None:
        """Take back the comments a retraction entry removes (or, through the ledger, will remove)."""
        retraction = retraction_of(fields, (fields.get("channel") or NONE)[:MAX_NAME_CHARS])
        if retraction is None:
            self.malformed += 1
            return
        self.retractions += 1
        for key, time_ms, indices, source in self.ledger.retract(retraction):
            self.retracted += 1
            for heat in (self.channels[key], self.channels[ALL]):  # never ALL twice: no channel is "" (NONE)
                heat.remove(time_ms, indices, source)

    def prune(self, now_ms: int) -> None:
        for heat in self.channels.values():
            heat.recent.prune(now_ms)

    # --- views --------------------------------------------------------------------------------------
    def _counts(self, row: Row) -> dict[str, Any]:
        names = self.labels.names
        return {"comments": row[0], "labels": {n: (row[i + 1] if i + 1 < len(row) else 0) for i, n in enumerate(names)}}

    def _series(self, start_ms: int, step_ms: int, rows: list[Row], now_ms: int) -> dict[str, Any]:
        """Rates (per minute) of ``rows``; a last row still filling up (``now_ms`` inside it) is a rate over
        its elapsed part (at least a second), so the newest point does not dip."""
        scale = [60_000 / step_ms] * len(rows)
        last_start = start_ms + (len(rows) - 1) * step_ms
        if rows and last_start <= now_ms < last_start + step_ms:
            scale[-1] = 60_000 / max(1_000, now_ms - last_start)
        names = self.labels.names
        return {
            "start": start_ms,
            "step": step_ms,
            "comments": [round(r[0] * k, 2) for r, k in zip(rows, scale, strict=True)],
            "labels": {
                n: [round((r[i + 1] if i + 1 < len(r) else 0) * k, 2) for r, k in zip(rows, scale, strict=True)]
                for i, n in enumerate(names)
            },
        }

    def heat(self, channel: str, window: str, now_ms: int) -> dict[str, Any]:
        """Series (comments per minute, per label) and counts of ``channel`` over ``window`` ending now."""
        heat = self.channels.get(channel)
        if heat is None:
            heat = self._heat()
        spec = WINDOWS[window]
        if spec is None:
            start, step, rows = heat.whole.span(until_ms=now_ms, max_points=MAX_POINTS)
            return {"series": self._series(start, step, rows, now_ms), "counts": self._counts(heat.totals)}
        span, step = spec
        start, rows = heat.recent.window(now_ms, span, step)
        total: Row = [0]
        for row in rows:
            for i, v in enumerate(row):
                if i >= len(total):
                    total.append(0)
                total[i] += v
        return {"series": self._series(start, step, rows, now_ms), "counts": self._counts(total)}

    def channel_list(self, now_ms: int) -> list[dict[str, Any]]:
        """Every channel: its name, comments per minute over the last minute, and its total."""
        rows = []
        for name, heat in self.channels.items():
            _, recent = heat.recent.window(now_ms, 60_000, FINE_MS)
            rows.append((name, sum(r[0] for r in recent), heat.totals[0]))
        rows.sort(key=lambda c: (c[0] != ALL, c[0] == OTHER, -c[2], c[0]))
        return [{"name": name, "rate": rate, "total": total} for name, rate, total in rows]

    def feed(self, channel: str, n: int) -> list[FeedItem]:
        """The newest ``n`` comments of ``channel``, newest first."""
        heat = self.channels.get(channel)
        if heat is None:
            return []
        items = list(heat.feed)[-n:]
        items.reverse()
        return items

    def layers(self) -> dict[str, list[str]]:
        """Layer → its label names as counted, in the order they were registered; ``""`` (the first stage's
        labels) first."""
        out: dict[str, list[str]] = {"": []}
        for name in self.labels.names:
            out.setdefault(self._layer_of.get(name, ""), []).append(name)
        return out

    def latency(self) -> dict[str, Any]:
        values = sorted(self.latencies)
        return {"p50": _percentile(values, 0.50), "p99": _percentile(values, 0.99), "n": len(values)}
