"""The worker end to end, in-process, against a real redis-server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from worker.inputs import read_records
from worker.model.untrained import init_version
from worker.streams.producer import StreamProducer
from worker.tools.embedded import EmbeddedRedis

from ..conftest import LABELS, SAMPLE
from ..inprocess import make_worker, sample
from .helpers import entries, run_until, scores_of


async def push_sample(client: aioredis.Redis, n: int | None = None, stream: str = "livetopic:comments") -> list[str]:
    producer = StreamProducer(client, stream)
    records = read_records([SAMPLE], channel="test", limit=n)
    return await producer.add([r.fields for r in records])


async def test_every_comment_out_exactly_once(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tiny_repo: Path
) -> None:
    ids = await push_sample(redis_client)
    worker = make_worker(redis_server.url, tiny_repo, max_batch_size=16)
    await run_until(worker, redis_client, len(ids))
    out = await entries(redis_client, "livetopic:topics")
    assert sorted(e["source_id"] for e in out) == sorted(ids)  # each once
    assert await redis_client.xlen("livetopic:dead") == 0
    records = {i: r.fields for i, r in zip(ids, read_records([SAMPLE], channel="test"), strict=True)}
    for entry in out:
        original = records[entry["source_id"]]
        for key in ("channel", "user", "ts"):
            assert entry.get(key) == original.get(key)
        scores = scores_of(entry)
        assert list(scores) == LABELS and all(0 <= v <= 1 for v in scores.values())
        labels = json.loads(entry["labels"])
        assert labels == [lbl for lbl in LABELS if scores[lbl] >= 0.5 - 1e-4]  # model order, threshold 0.5
        assert entry["model"] == "tiny:1" and int(entry["latency_ms"]) >= 0
        assert entry["text"] == original["text"]  # results carry the comment (--no-output-text: tests/cli)
    pending = await redis_client.xpending("livetopic:comments", "livetopic")
    assert pending["pending"] == 0
    sizes = worker.metrics.batch_size.collect()[0].samples
    assert any(s.name.endswith("_count") and s.value > 1 for s in sizes)
    classified = sample(worker, "livetopic_comments_total", outcome="classified")
    assert classified == len(ids)


async def test_invalid_entries_are_dead_lettered(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tiny_repo: Path
) -> None:
    await redis_client.xgroup_create("livetopic:comments", "livetopic", id="0", mkstream=True)
    good = await redis_client.xadd("livetopic:comments", {"text": "好球", "user": "u"})
    bad = [
        await redis_client.xadd("livetopic:comments", f)
        for f in ({"user": "u"}, {"text": "   "}, {"text": b"\xff\xfe"}, {"text": "x" * 50})
    ]
    worker = make_worker(redis_server.url, tiny_repo, max_text_chars=40)
    await run_until(worker, redis_client, 5)
    dead = await entries(redis_client, "livetopic:dead")
    assert sorted(d["source_id"] for d in dead) == sorted(b.decode() for b in bad)
    assert all(d["error"] and d["deliveries"] == "1" for d in dead)
    out = await entries(redis_client, "livetopic:topics")
    assert [o["source_id"] for o in out] == [good.decode()]
    assert (await redis_client.xpending("livetopic:comments", "livetopic"))["pending"] == 0


@pytest.mark.parametrize(
    ("arch", "n_labels", "multi"),
    [
        ("bert", 4, True),  # bert-base-chinese topics card
        ("bert", 5, False),  # star-rating card
        ("distilbert", 2, False),  # SST-2 card
        ("roberta", 6, False),  # emotion card
    ],
)
async def test_reference_card_shapes_serve(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tmp_path: Path, arch: str, n_labels: int, multi: bool
) -> None:
    labels = [f"L{i}" for i in range(n_labels)]
    texts = SAMPLE.read_text(encoding="utf-8").splitlines()
    init_version(tmp_path / "repo", preset="tiny", arch=arch, labels=labels, multi_label=multi, texts=texts)  # type: ignore[arg-type]
    ids = await push_sample(redis_client, 40)
    worker = make_worker(redis_server.url, tmp_path / "repo")
    await run_until(worker, redis_client, len(ids))
    out = await entries(redis_client, "livetopic:topics")
    assert len(out) == len(ids)
    for entry in out:
        scores = scores_of(entry)
        assert list(scores) == labels
        chosen = json.loads(entry["labels"])
        if not multi:
            # the top label (scores are published to 4 decimals: a near tie shows as equal scores)
            assert len(chosen) == 1 and scores[chosen[0]] == max(scores.values())
            assert abs(sum(scores.values()) - 1) < 1e-2
