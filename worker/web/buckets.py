"""Counts in time buckets, with bounded memory: :class:`RecentBuckets` keeps fine buckets for a fixed
horizon and drops older ones; :class:`MergingBuckets` covers everything ever added and doubles its bucket
width (merging neighbours) whenever it would hold more than its cap. Pure Python, no clock of its own:
callers pass times in milliseconds.

A bucket is a row of counts: ``row[0]`` counts comments, ``row[i]`` counts label ``i`` (the index a
:class:`LabelIndex` gave that label; 0 is never a label's index). Kept rows are ``array("q")`` (8 bytes a
count, against about 40 for a list of large ints): a channel's buckets stay under about 1 MB even with 64
labels (see :mod:`.aggregate`).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, MutableSequence, Sequence

__all__ = ["LabelIndex", "MergingBuckets", "RecentBuckets", "Row", "new_row", "subtract"]

Row = MutableSequence[int]


def new_row() -> Row:
    """A row to keep: one count (comments), growing as labels are counted."""
    return array("q", [0])


class LabelIndex:
    """Label name ↔ row index (from 1), in the order labels were first registered; at most ``cap`` labels,
    further ones are not counted (a bounded number of series whatever the models publish)."""

    def __init__(self, cap: int = 64) -> None:
        self.cap = cap
        self.names: list[str] = []
        self._index: dict[str, int] = {}

    def index(self, name: str) -> int:
        """The row index of ``name`` (registering it), or 0 when the cap is reached."""
        found = self._index.get(name)
        if found is None:
            if len(self.names) >= self.cap:
                return 0
            self.names.append(name)
            found = self._index[name] = len(self.names)
        return found

    def indices(self, names: Iterable[str]) -> list[int]:
        return [i for i in (self.index(n) for n in names) if i]


def _add(row: Row, indices: Sequence[int]) -> None:
    row[0] += 1
    for i in indices:
        if i >= len(row):
            row.extend([0] * (i + 1 - len(row)))
        row[i] += 1


def subtract(row: Row, indices: Sequence[int]) -> None:
    """Take back one comment with labels ``indices`` from ``row`` (a retracted comment; never below 0)."""
    row[0] = max(0, row[0] - 1)
    for i in indices:
        if i < len(row):
            row[i] = max(0, row[i] - 1)


def _sum_into(target: Row, source: Row) -> None:
    if len(source) > len(target):
        target.extend([0] * (len(source) - len(target)))
    for i, value in enumerate(source):
        target[i] += value


class _Buckets:
    """Rows of counts by bucket number (``time_ms // width_ms``): what both kinds of buckets share."""

    def __init__(self, width_ms: int) -> None:
        self.width_ms = width_ms
        self.rows: dict[int, Row] = {}

    def _count(self, b: int, indices: Sequence[int]) -> None:
        """Count one comment with labels ``indices`` in bucket ``b`` (made when it is new)."""
        row = self.rows.get(b)
        if row is None:
            row = self.rows[b] = new_row()
        _add(row, indices)

    def remove(self, time_ms: int, indices: Sequence[int]) -> None:
        """Take back what ``add`` counted at ``time_ms`` (nothing once its bucket is dropped; a merged bucket
        holds what its halves held)."""
        row = self.rows.get(time_ms // self.width_ms)
        if row is not None:
            subtract(row, indices)


class RecentBuckets(_Buckets):
    """Buckets of ``width_ms`` for the last ``horizon_ms``: :meth:`prune` drops older ones, :meth:`add`
    ignores them."""

    def __init__(self, width_ms: int, horizon_ms: int) -> None:
        super().__init__(width_ms)
        self.horizon_ms = horizon_ms
        self._floor = 0  # bucket numbers below this are gone

    def add(self, time_ms: int, indices: Sequence[int]) -> None:
        b = time_ms // self.width_ms
        if b >= self._floor:
            self._count(b, indices)

    def prune(self, now_ms: int) -> None:
        floor = (now_ms - self.horizon_ms) // self.width_ms
        if floor > self._floor:
            self._floor = floor
            for b in [b for b in self.rows if b < floor]:
                del self.rows[b]

    def window(self, end_ms: int, span_ms: int, step_ms: int) -> tuple[int, list[Row]]:
        """Rows of ``step_ms`` (a multiple of the width) covering ``span_ms`` up to ``end_ms``: (start, rows)."""
        per = max(1, step_ms // self.width_ms)
        last = end_ms // step_ms  # the step that holds end_ms
        n = max(1, span_ms // step_ms)
        first = last - n + 1
        out: list[Row] = [[0] for _ in range(n)]
        for b, row in self.rows.items():
            k = b // per - first
            if 0 <= k < n:
                _sum_into(out[k], row)
        return first * step_ms, out


class MergingBuckets(_Buckets):
    """Buckets covering all time added, at most ``cap`` of them: when a new one would exceed the cap, the
    width doubles and neighbours merge, so memory stays bounded while the whole stream is kept."""

    def __init__(self, width_ms: int, cap: int = 720) -> None:
        super().__init__(width_ms)
        self.cap = cap
        self._lo: int | None = None
        self._hi: int | None = None

    def add(self, time_ms: int, indices: Sequence[int]) -> None:
        b = time_ms // self.width_ms
        if b not in self.rows:
            lo = b if self._lo is None else min(self._lo, b)
            hi = b if self._hi is None else max(self._hi, b)
            while hi - lo + 1 > self.cap:
                self._merge()
                b, lo, hi = b // 2, lo // 2, hi // 2
            self._lo, self._hi = lo, hi
        self._count(b, indices)

    def _merge(self) -> None:
        merged: dict[int, Row] = {}
        for b, row in self.rows.items():
            target = merged.get(b // 2)
            if target is None:
                merged[b // 2] = array("q", row)
            else:
                _sum_into(target, row)
        self.rows = merged
        self.width_ms *= 2

    def span(self, until_ms: int | None = None, max_points: int = 240) -> tuple[int, int, list[Row]]:
        """(start ms, step ms, rows) from the first bucket to the last (or to ``until_ms`` when later), empty
        ones included, neighbours summed so that there are at most ``max_points`` rows."""
        if self._lo is None or self._hi is None:
            return 0, self.width_ms, []
        lo, hi = self._lo, self._hi if until_ms is None else max(self._hi, until_ms // self.width_ms)
        factor = max(1, -(-(hi - lo + 1) // max_points))
        out: list[Row] = [[0] for _ in range((hi - lo) // factor + 1)]
        for b, row in self.rows.items():
            _sum_into(out[(b - lo) // factor], row)
        return lo * self.width_ms, self.width_ms * factor, out
