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
from .buckets import LabelIndex, MergingBuckets, RecentBuckets, Row, new_row

__all__ = ["ALL", "FINE_MS", "HORIZON_MS", "MAX_FEED_TEXT_CHARS", "MAX_LABEL_CHARS", "MAX_NAME_CHARS", "NONE",
           "OTHER", "WINDOWS", "Aggregator", "ChannelHeat", "FeedItem", "clip_text"]

FINE_MS = 5_000
HORIZON_MS = 60 * 60_000
# window name → (span ms, display step ms); None: the whole stream
WINDOWS: dict[str, tuple[int, int] | None] = {
    "5m": (5 * 60_000, 5_000), "15m": (15 * 60_000, 15_000), "60m": (HORIZON_MS, 60_000), "all": None,
}
ALL = ""  # the channel key of all channels together
OTHER = "(other)"  # channels beyond the cap
NONE = "(none)"  # entries without a channel field
MAX_MODELS = 16
LATENCY_SAMPLES = 4096
MAX_POINTS = 240  # whole-stream series are regrouped to at most this many points
MAX_NAME_CHARS = MAX_PASSTHROUGH_CHARS  # channel, user, ts, model tag
MAX_LABEL_CHARS = 64
MAX_FEED_TEXT_CHARS = 500
_ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


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
        return {"id": self.source_id, "time": self.time_ms, "channel": self.channel, "user": self.user,
                "ts": self.ts, "labels": self.labels, "text": self.text or "", "missing": self.text_missing}


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
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.ingested = 0
        self.malformed = 0
        self.last_id = "0-0"

    def _heat(self) -> ChannelHeat:
        return ChannelHeat(RecentBuckets(FINE_MS, HORIZON_MS), MergingBuckets(60_000),
                           feed=deque(maxlen=self.feed_size))

    def _channel(self, name: str) -> ChannelHeat:
        heat = self.channels.get(name)
        if heat is None:
            real = len(self.channels) - 1 - (OTHER in self.channels)
            if real >= self.max_channels and name != OTHER:
                return self._channel(OTHER)
            heat = self.channels[name] = self._heat()
        return heat

    def _model(self, tag: str, scores: str | None) -> None:
        if tag in self.models:
            self.models[tag] += 1
            return
        if scores:  # the label order of a new model: its scores object lists every label in model order
            try:
                order = json.loads(scores)
            except ValueError:
                order = {}
            if isinstance(order, dict):
                self.labels.indices(str(k)[:MAX_LABEL_CHARS] for k in itertools.islice(order, self.labels.cap))
        key = tag if len(self.models) < MAX_MODELS else OTHER
        self.models[key] = self.models.get(key, 0) + 1

    def add(self, entry_id: str, fields: Mapping[str, str], shard: int = 0) -> None:
        """Count one output entry (of shard ``shard``'s output stream)."""
        self.last_id = entry_id
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
        self._model(fields.get("model", "")[:MAX_NAME_CHARS], fields.get("scores"))
        latency = fields.get("latency_ms")
        if latency:
            with contextlib.suppress(ValueError):
                self.latencies.append(float(latency))
        # labels past the index's cap are neither counted nor shown
        indices = [i for i in (self.labels.index(str(x)[:MAX_LABEL_CHARS]) for x in labels[: self.labels.cap]) if i]
        names = self.labels.names  # the index's own strings: feed items share them
        channel = (fields.get("channel") or NONE)[:MAX_NAME_CHARS]
        text = clip_text(fields.get("text"))
        item = FeedItem(entry_id, source, time_ms, channel, [names[i - 1] for i in indices],
                        fields.get("user", "")[:MAX_NAME_CHARS], fields.get("ts", "")[:MAX_NAME_CHARS], text,
                        text_missing=text is None and not is_id, shard=shard)
        heat = self._channel(channel)
        heat.add(time_ms, indices, item)
        self.channels[ALL].add(time_ms, indices, item)

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
            "start": start_ms, "step": step_ms,
            "comments": [round(r[0] * k, 2) for r, k in zip(rows, scale, strict=True)],
            "labels": {n: [round((r[i + 1] if i + 1 < len(r) else 0) * k, 2) for r, k in zip(rows, scale, strict=True)]
                       for i, n in enumerate(names)},
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

    def latency(self) -> dict[str, Any]:
        values = sorted(self.latencies)
        return {"p50": _percentile(values, 0.50), "p99": _percentile(values, 0.99), "n": len(values)}
