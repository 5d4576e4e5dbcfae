"""A multi-task version served by a worker against a real Redis: the same result fields as the equivalent
pipeline (general labels for every comment, game labels exactly when general gave Game, sentiment for every
comment), every comment exactly once, the further heads from the first run (no time of their own)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis

from worker.model.load import load_model
from worker.model.repository import MANIFEST_NAME, read_manifest
from worker.streams.producer import StreamProducer
from worker.tools.embedded import EmbeddedRedis

from ..inprocess import make_worker, sample
from ..multitask import train_multitask
from .helpers import entries, run_until
from .test_pipeline import check_pipeline_result


def _served(root: Path) -> tuple[Path, list[str]]:
    """The trained version, its Game threshold at the median Game score of the comments to push (so that the game
    head is given to some of them, not all), and those comments."""
    repo, data = train_multitask(root)
    texts = [row["content"] for row in json.loads((data / "G0.json").read_text(encoding="utf-8"))]
    vdir = repo / "1"
    probs = load_model(vdir, device="cpu", dtype="float32", backend="torch").predict_texts(texts)
    manifest = read_manifest(vdir)
    thresholds = {**manifest.thresholds, "Game": float(np.median(probs[:, 1]))}
    (vdir / MANIFEST_NAME).write_text(manifest.model_copy(update={"thresholds": thresholds}).model_dump_json())
    return repo, texts


async def test_a_worker_serves_the_heads_from_one_run(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    repo, texts = await asyncio.to_thread(_served, tmp_path)
    ids = await StreamProducer(redis_client, "livetopic:comments").add([{"text": t} for t in texts])
    worker = make_worker(redis_server.url, repo, backend="torch", dtype="float32")
    await run_until(worker, redis_client, len(texts))
    out = await entries(redis_client, "livetopic:topics")
    assert sorted(o["source_id"] for o in out) == sorted(ids)  # every comment, exactly once
    assert await redis_client.xlen("livetopic:dead") == 0
    assert {o["model"] for o in out} == {"multitask:1"}
    games = sum(check_pipeline_result(o) for o in out)
    assert 0 < games < len(texts)
    comments = {s: sample(worker, "livetopic_stage_comments_total", stage=s) for s in ("general", "game", "sentiment")}
    assert comments == {"general": len(texts), "game": games, "sentiment": len(texts)}
    assert sample(worker, "livetopic_stage_inference_seconds_sum", stage="general") > 0
    for head in ("game", "sentiment"):  # no forward pass of their own
        assert sample(worker, "livetopic_stage_inference_seconds_sum", stage=head) == 0
