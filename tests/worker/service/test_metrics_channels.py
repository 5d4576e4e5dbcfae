"""``livetopic_label_total{label, channel}``: channel is one of ``--metrics-channels`` or ``other``, and ``all``
when none are listed, so its cardinality stays bounded; the counts equal the labels in the output stream."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from worker.errors import ConfigError
from worker.inputs import read_records
from worker.service.metrics import Metrics
from worker.settings import load_settings
from worker.streams.producer import StreamProducer
from worker.tools.embedded import EmbeddedRedis

from ...conftest import SAMPLE
from ...inprocess import make_worker
from ...integration.helpers import entries, run_until


def test_channel_label_is_bounded_by_the_allowlist() -> None:
    assert Metrics().channel_label("anything") == "all"
    m = Metrics(channels=("a", "b"))
    assert [m.channel_label(c) for c in ("a", "b", "c", None, "")] == ["a", "b", "other", "other", "other"]


def test_the_setting_parses_a_comma_list() -> None:
    assert load_settings({"metrics_channels": " a, b ,,a"}).metrics_channels == ("a", "b")
    assert load_settings().metrics_channels == ()
    with pytest.raises(ConfigError, match="metrics-channels"):
        load_settings({"metrics_channels": "a,other"})


def label_samples(metrics: Metrics) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for sample in metrics.labels.collect()[0].samples:
        if sample.name == "livetopic_label_total":
            out[(sample.labels["label"], sample.labels["channel"])] += int(sample.value)
    return out


async def test_worker_counts_labels_per_allowed_channel(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tiny_repo: Path
) -> None:
    records = [r.fields for r in read_records([SAMPLE], limit=120)]
    for i, fields in enumerate(records):
        if i % 4:
            fields["channel"] = "abc"[i % 4 - 1]  # a, b, c and one in four without a channel
    ids = await StreamProducer(redis_client, "livetopic:comments").add(records)
    worker = make_worker(redis_server.url, tiny_repo, metrics_channels="a,b")
    await run_until(worker, redis_client, len(ids))
    expect: Counter[tuple[str, str]] = Counter()
    for entry in await entries(redis_client, "livetopic:topics"):
        channel = entry.get("channel")
        for label in json.loads(entry["labels"]):
            expect[(label, channel if channel in ("a", "b") else "other")] += 1
    got = label_samples(worker.metrics)
    assert got == expect
    assert {channel for _label, channel in got} == {"a", "b", "other"}
