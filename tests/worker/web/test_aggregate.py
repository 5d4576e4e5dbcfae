"""The dashboard's aggregation: per channel and per topic counts equal what was added, whatever the window;
bounded channels, feed, labels and buckets; malformed entries counted, not fatal."""

from __future__ import annotations

import json
import random
from collections import Counter

from worker.web.aggregate import ALL, FINE_MS, HORIZON_MS, NONE, OTHER, Aggregator

LABELS = ["轉播", "加油", "閒聊", "球員"]
NOW = 1_800_000_000_000


def entry(t_ms: int, seq: int, channel: str | None, labels: list[str], model: str = "tvl:1") -> tuple[str, dict]:
    fields = {
        "source_id": f"{t_ms}-{seq}",
        "labels": json.dumps(labels, ensure_ascii=False),
        "scores": json.dumps({k: 0.5 for k in LABELS}, ensure_ascii=False),
        "model": model,
        "latency_ms": str(seq % 100),
    }
    if channel is not None:
        fields["channel"] = channel
    return f"{t_ms + 5}-{seq}", fields


def test_counts_per_channel_and_topic_match_what_was_added() -> None:
    rng = random.Random(0)
    agg = Aggregator()
    expect: dict[str, Counter[str]] = {}
    added = []
    for i in range(3_000):
        t = NOW - 50 * 60_000 + i * 1_000  # the last 50 minutes
        channel = rng.choice(["a", "b", "c", None])
        labels = rng.sample(LABELS, rng.randint(0, 2))
        agg.add(*entry(t, i, channel, labels))
        added.append((t, channel))
        for key in (channel or NONE, ALL):
            expect.setdefault(key, Counter()).update([*labels, "__comments__"])
    agg.prune(NOW)
    assert agg.labels.names == LABELS  # model order, from the first entry's scores
    for channel, counts in expect.items():
        for window in ("60m", "all"):
            view = agg.heat(channel, window, NOW)
            assert view["counts"]["comments"] == counts["__comments__"], (channel, window)
            assert view["counts"]["labels"] == {k: counts[k] for k in LABELS}, (channel, window)
    view = agg.heat("a", "5m", NOW)
    start = view["series"]["start"]
    assert NOW - 5 * 60_000 - 5_000 < start <= NOW - 5 * 60_000 + 5_000
    assert view["counts"]["comments"] == sum(1 for t, channel in added if channel == "a" and t >= start)
    assert len(view["series"]["comments"]) == 60 and set(view["series"]["labels"]) == set(LABELS)
    names = [c["name"] for c in agg.channel_list(NOW)]
    assert names[0] == ALL and set(names) == {ALL, "a", "b", "c", NONE}


def test_series_are_rates_per_minute() -> None:
    agg = Aggregator()
    for i in range(120):  # 2 comments a second for a minute, all 加油
        agg.add(*entry(NOW - 60_000 + i * 500, i, "a", ["加油"]))
    series = agg.heat("a", "15m", NOW)["series"]
    assert series["step"] == 15_000
    assert series["labels"]["加油"][-5:-1] == [120.0] * 4  # 30 per 15 s = 120 per minute
    assert series["comments"][-5:-1] == [120.0] * 4


def test_channels_beyond_the_cap_are_grouped() -> None:
    agg = Aggregator(max_channels=3)
    for i in range(10):
        agg.add(*entry(NOW - 1_000, i, f"ch{i}", ["加油"]))
    names = {c["name"] for c in agg.channel_list(NOW)}
    assert names == {ALL, "ch0", "ch1", "ch2", OTHER}
    assert agg.heat(OTHER, "all", NOW)["counts"]["comments"] == 7


def test_memory_stays_bounded_over_a_long_stream() -> None:
    agg = Aggregator(feed_size=20)
    start = NOW - 30 * 3_600_000
    for i in range(30 * 60):  # one comment a minute for 30 hours, the clock moving along
        t = start + i * 60_000
        agg.add(*entry(t, i, "a", ["閒聊"], model=f"m:{i % 40}"))
        agg.prune(t)
    heat = agg.channels["a"]
    assert len(heat.recent.rows) <= HORIZON_MS // FINE_MS + 1
    assert len(heat.whole.rows) <= heat.whole.cap
    assert len(heat.feed) == 20
    assert len(agg.models) <= 17  # 16 tags and (other)
    assert agg.heat("a", "all", NOW)["counts"]["comments"] == 30 * 60


def test_malformed_entries_are_counted_not_fatal() -> None:
    agg = Aggregator()
    agg.add("1-0", {"source_id": "1-0"})
    agg.add("2-0", {"labels": "not json"})
    agg.add("3-0", {"labels": '{"a": 1}'})
    agg.add(*entry(NOW, 1, "a", ["加油"]))
    assert agg.malformed == 3 and agg.ingested == 1
    feed = agg.feed("a", 10)
    assert [item.labels for item in feed] == [["加油"]]
    assert agg.latency()["n"] == 1


def test_every_string_kept_from_an_entry_is_cut_short() -> None:
    """An output stream may hold anything: names, tags and texts are cut, labels past the cap are not kept, the
    feed's label names are the index's own strings, and a source_id that is no entry id is never looked up."""
    agg = Aggregator()
    labels = [f"L{i}" + "x" * 1_000 for i in range(100)]
    agg.add(
        "5-0",
        {
            "source_id": "7-1",
            "channel": "c" * 60_000,
            "user": "u" * 5_000,
            "ts": "t" * 5_000,
            "text": "字" * 5_000,
            "labels": json.dumps(labels),
            "model": "m" * 5_000,
            "scores": json.dumps(dict.fromkeys(labels, 0.5)),
        },
    )
    agg.add("6-0", {"source_id": "not an id " * 100, "channel": "c" * 60_000, "labels": "[]", "model": "m" * 300})
    assert {len(name) for name in agg.channels} == {0, 256}
    assert len(agg.labels.names) == 64 and {len(n) for n in agg.labels.names} == {64}
    assert [len(tag) for tag in agg.models] == [256]
    second, first = agg.feed("c" * 256, 2)
    assert (len(first.user), len(first.ts), len(first.text or "")) == (256, 256, 501) and first.text.endswith("…")
    assert len(first.labels) == 64 and all(a is b for a, b in zip(first.labels, agg.labels.names, strict=True))
    assert first.time_ms == 7 and not first.text_missing
    assert second.text is None and second.text_missing and len(second.source_id) == 256 and second.time_ms == 6
