"""The post-game view of one scoring of a game (a :class:`Run`): topic heat over the match with a rolling
window, each topic's peaks with their top comments, and the topic shares. Pure numpy, no I/O.

Heat at time t is the number of comments carrying the topic in the ``window`` seconds up to t, as comments
per minute; a timeline spans at least two windows (and a minute), however close the comments. Peaks are the
highest points of a topic's heat at least a window apart (and at least a quarter of its highest); a peak's top
comments are those of its window with the topic, by the topic's score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Peak", "Run", "Scored", "Timeline", "build_timeline", "compare"]

STEPS_PER_WINDOW = 6
# The shortest span a timeline covers, in windows and in seconds: comments that arrived within a second (a
# stream replayed at full speed) still draw a curve over readable time ticks, not one point.
MIN_SPAN_WINDOWS = 2
MIN_SPAN_S = 60.0


@dataclass(slots=True)
class Scored:
    """One comment of a run: when (seconds into the game), what, and its topics (with scores if known)."""

    offset_s: float
    text: str
    labels: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)
    user: str = ""
    source_id: str = ""  # the input entry, for comments read from the output stream (text looked up later)
    shard: int = 0  # whose input stream holds source_id


@dataclass(slots=True)
class Run:
    name: str  # e.g. "teacher scores (file)" or "model tvl:3"
    labels: list[str]
    comments: list[Scored]
    time_axis: str = "match time"  # what the offsets count from


@dataclass(slots=True)
class Peak:
    label: str
    offset_s: float
    per_min: float
    top: list[Scored]


@dataclass(slots=True)
class Timeline:
    run: Run
    window_s: float
    step_s: float
    start_s: float
    heat: dict[str, np.ndarray]  # label → comments per minute at each step
    total: np.ndarray  # all comments per minute
    peaks: dict[str, list[Peak]]
    shares: dict[str, float]  # label → fraction of comments carrying it
    counts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        def comment(c: Scored, label: str) -> dict[str, Any]:
            return {"offset": c.offset_s, "text": c.text, "user": c.user, "score": c.scores.get(label)}

        return {
            "name": self.run.name,
            "labels": self.run.labels,
            "window": self.window_s,
            "step": self.step_s,
            "start": self.start_s,
            "comments": len(self.run.comments),
            "counts": self.counts,
            "shares": self.shares,
            "heat": {k: [round(float(v), 2) for v in a] for k, a in self.heat.items()},
            "total": [round(float(v), 2) for v in self.total],
            "peaks": {
                k: [
                    {"offset": p.offset_s, "per_min": round(p.per_min, 1), "top": [comment(c, k) for c in p.top]}
                    for p in ps
                ]
                for k, ps in self.peaks.items()
            },
        }


def _rolling(offsets: np.ndarray, start: float, step: float, n: int, per: int, window: float) -> np.ndarray:
    """Comments per minute in the ``per`` steps up to each of ``n`` steps."""
    # a tiny epsilon: with a step like 20/6 s, 80 s must fall in bin 24, not 23.999…
    bins = np.clip(np.floor((offsets - start) / step + 1e-9).astype(np.int64), 0, n - 1) if len(offsets) else offsets
    counts = np.bincount(bins, minlength=n).astype(np.float64) if len(offsets) else np.zeros(n)
    cumulative = np.concatenate([[0.0], np.cumsum(counts)])
    idx = np.arange(1, n + 1)
    return (cumulative[idx] - cumulative[np.maximum(0, idx - per)]) * (60.0 / window)


def _peaks(
    run: Run, label: str, heat: np.ndarray, start: float, step: float, window: float, n_peaks: int, n_top: int
) -> list[Peak]:
    if not len(heat) or heat.max() <= 0:
        return []
    order = np.argsort(-heat, kind="stable")
    floor = heat.max() / 4
    chosen: list[int] = []
    for i in order:
        if heat[i] < floor or len(chosen) >= n_peaks:
            break
        if all(abs(int(i) - j) * step >= window for j in chosen):
            chosen.append(int(i))
    peaks = []
    for i in sorted(chosen):
        end = start + (i + 1) * step
        inside = [c for c in run.comments if end - window <= c.offset_s < end and label in c.labels]
        inside.sort(key=lambda c: -c.scores.get(label, 0.0))
        peaks.append(Peak(label, end, float(heat[i]), inside[:n_top]))
    return peaks


def build_timeline(run: Run, window_s: float = 60.0, *, n_peaks: int = 3, n_top: int = 3) -> Timeline:
    """Heat, peaks and shares of ``run`` with a rolling window of ``window_s`` seconds."""
    if window_s <= 0:
        raise ValueError("window must be > 0")
    step = window_s / STEPS_PER_WINDOW if window_s >= STEPS_PER_WINDOW else window_s
    per = max(1, round(window_s / step))
    offsets = np.array([c.offset_s for c in run.comments], dtype=np.float64)
    start = float(np.floor(offsets.min() / step) * step) if len(offsets) else 0.0
    end = float(offsets.max()) if len(offsets) else 0.0
    n = max(int(np.floor((end - start) / step + 1e-9)) + 1, MIN_SPAN_WINDOWS * per, int(np.ceil(MIN_SPAN_S / step)))
    heat, counts = {}, {}
    for label in run.labels:
        mask = np.array([label in c.labels for c in run.comments], dtype=bool)
        heat[label] = _rolling(offsets[mask] if len(offsets) else offsets, start, step, n, per, window_s)
        counts[label] = int(mask.sum())
    total = _rolling(offsets, start, step, n, per, window_s)
    peaks = {label: _peaks(run, label, heat[label], start, step, window_s, n_peaks, n_top) for label in run.labels}
    size = max(1, len(run.comments))
    shares = {label: counts[label] / size for label in run.labels}
    return Timeline(run, window_s, step, start, heat, total, peaks, shares, counts)


def compare(a: Timeline, b: Timeline) -> dict[str, float | None]:
    """Per shared topic, the correlation of the two heat curves (None where one of them is flat)."""
    out: dict[str, float | None] = {}
    for label in a.run.labels:
        if label not in b.heat or len(a.heat[label]) != len(b.heat[label]):
            continue
        x, y = a.heat[label], b.heat[label]
        out[label] = None if x.std() == 0 or y.std() == 0 else round(float(np.corrcoef(x, y)[0, 1]), 3)
    return out
