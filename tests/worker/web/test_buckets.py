"""Time buckets: the recent ones drop what is older than their horizon, the whole-stream ones widen instead
of growing, and neither loses a count on the way."""

from __future__ import annotations

import random

from worker.web.buckets import LabelIndex, MergingBuckets, RecentBuckets


def test_label_index_keeps_order_and_cap() -> None:
    index = LabelIndex(cap=2)
    assert index.indices(["b", "a", "b"]) == [1, 2, 1]
    assert index.index("c") == 0  # over the cap: not counted
    assert index.names == ["b", "a"]


def test_recent_buckets_window_and_prune() -> None:
    b = RecentBuckets(width_ms=5_000, horizon_ms=60_000)
    for t in range(0, 120_000, 1_000):  # one comment a second for two minutes, label 1 every other second
        b.add(t, [1] if t % 2_000 == 0 else [])
    start, rows = b.window(end_ms=119_999, span_ms=60_000, step_ms=15_000)
    assert start == 60_000 and len(rows) == 4
    assert [r[0] for r in rows] == [15, 15, 15, 15]
    assert sum(r[1] for r in rows) == 30
    b.prune(now_ms=120_000)
    assert min(b.rows) * 5_000 >= 60_000  # older buckets are gone
    b.add(1_000, [1])  # and what is older than the horizon is not counted again
    assert all(k * 5_000 >= 60_000 for k in b.rows)


def test_merging_buckets_stay_under_the_cap_and_keep_every_count() -> None:
    rng = random.Random(1)
    b = MergingBuckets(width_ms=60_000, cap=50)
    times = sorted(rng.randrange(0, 48 * 3_600_000) for _ in range(5_000))  # two days
    for t in times:
        b.add(t, [1, 3] if t % 3 == 0 else [2])
    start, step, rows = b.span()
    assert len(rows) <= 50 and len(b.rows) <= 50 and step == b.width_ms
    assert sum(r[0] for r in rows) == 5_000
    assert sum(r[3] for r in rows if len(r) > 3) == sum(1 for t in times if t % 3 == 0)
    assert start <= times[0] < start + b.width_ms
    assert times[-1] < start + len(rows) * b.width_ms
    assert b.width_ms > 60_000 and b.width_ms % 60_000 == 0
    # up to a later time, in at most 10 points: the same counts, zeros after
    start, step, rows = b.span(until_ms=96 * 3_600_000, max_points=10)
    assert len(rows) <= 10 and start + len(rows) * step > 96 * 3_600_000
    assert sum(r[0] for r in rows) == 5_000 and rows[-1] == [0]
