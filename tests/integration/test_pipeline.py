"""A pipeline version served by a running worker process: general labels for every comment, game labels exactly
when general gave Game, sentiment for every comment; exactly once across hot reloads single → pipeline →
single."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from worker.model.manage import link_files
from worker.model.pipeline import build_pipeline, parse_stage
from worker.model.repository import publish_version, read_manifest
from worker.streams.producer import StreamProducer
from worker.tools.embedded import EmbeddedRedis

from ..cli.helpers import livetopic
from ..inprocess import make_worker, sample
from ..pipelines import GAME_LABELS, SENTIMENT_LABELS, make_layers, sample_texts, stage_flags
from .helpers import entries, run_until

STAGE_FIELDS = {"game_labels", "game_scores", "sentiment_labels", "sentiment_scores"}


def check_pipeline_result(out: dict[str, str]) -> bool:
    """Asserts the fields of a result the pipeline scored; returns whether Game was on."""
    game_on = "Game" in json.loads(out["labels"])
    assert ("game_labels" in out) == ("game_scores" in out) == game_on, out
    if game_on:
        assert set(json.loads(out["game_scores"])) == set(GAME_LABELS)
        assert set(json.loads(out["game_labels"])) <= set(GAME_LABELS)
    assert set(json.loads(out["sentiment_scores"])) == set(SENTIMENT_LABELS)
    assert len(json.loads(out["sentiment_labels"])) == 1  # softmax: the top class
    return game_on


async def test_a_worker_serves_a_pipeline_across_hot_reloads(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tmp_path: Path, start_worker: Callable[..., object]
) -> None:
    layers = await asyncio.to_thread(make_layers, tmp_path / "layers")
    repo = tmp_path / "served"
    general = layers["general"] / "1"
    publish_version(repo, lambda out: link_files(general, out), read_manifest(general))  # version 1: single
    start_worker(redis_server.url, str(repo), "--reload-interval-s", "0.2")
    producer = StreamProducer(redis_client, "livetopic:comments")
    texts = sample_texts()
    pushed: list[str] = []

    async def push_until(model: str) -> None:
        """Push comments, 10 at a time, until a result names ``model``."""
        async with asyncio.timeout(120):
            while True:
                start = len(pushed) % (len(texts) - 10)
                pushed.extend(await producer.add([{"text": t} for t in texts[start : start + 10]]))
                rows = await redis_client.xrevrange("livetopic:topics", count=20)
                if any(fields.get(b"model") == model.encode() for _, fields in rows):
                    return
                await asyncio.sleep(0.1)

    async def finished() -> None:
        async with asyncio.timeout(60):
            while await redis_client.xlen("livetopic:topics") < len(pushed):
                await asyncio.sleep(0.05)

    await push_until("general:1")
    build = await asyncio.to_thread(
        livetopic, "pipeline", "build", *stage_flags(layers), "--out", str(repo), "--name", "cascade"
    )
    assert build.returncode == 0, build.stderr
    assert "published pipeline version 2" in build.stdout
    await push_until("cascade:2")
    pushed.extend(await producer.add([{"text": t} for t in texts]))  # the whole sample on the pipeline
    await finished()
    back = await asyncio.to_thread(livetopic, "model", "rollback", "1", "--repo", str(repo))
    assert back.returncode == 0, back.stderr
    await push_until("general:3")
    await finished()

    out = await entries(redis_client, "livetopic:topics")
    assert sorted(o["source_id"] for o in out) == sorted(pushed)  # every comment, exactly once
    assert await redis_client.xlen("livetopic:dead") == 0
    assert [m for i, m in enumerate(o["model"] for o in out) if i == 0 or m != out[i - 1]["model"]] == [
        "general:1",
        "cascade:2",
        "general:3",
    ]  # each swap between two batches, in order
    game = []
    for o in out:
        assert json.loads(o["labels"]) is not None
        if o["model"] == "cascade:2":
            game.append(check_pipeline_result(o))
        else:
            assert not STAGE_FIELDS & set(o), o  # a single model adds no stage fields
    assert any(game) and not all(game)  # the game layer ran on some comments, not on all


async def test_each_stage_is_measured_and_labels_count_by_stage(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    layers = await asyncio.to_thread(make_layers, tmp_path / "layers")
    repo = tmp_path / "served"
    sources = [
        parse_stage(f"{name}={layers[name]}" + (":when=general.Game" if name == "game" else ""))
        for name in ("general", "game", "sentiment")
    ]
    await asyncio.to_thread(build_pipeline, repo, sources, name="cascade")
    texts = sample_texts()[:120]
    await StreamProducer(redis_client, "livetopic:comments").add([{"text": t} for t in texts])
    worker = make_worker(redis_server.url, repo, backend="torch", dtype="float32")
    await run_until(worker, redis_client, len(texts))
    out = await entries(redis_client, "livetopic:topics")
    games = sum(check_pipeline_result(o) for o in out)
    assert len(out) == len(texts) and 0 < games < len(texts)
    comments = {s: sample(worker, "livetopic_stage_comments_total", stage=s) for s in ("general", "game", "sentiment")}
    assert comments == {"general": len(texts), "game": games, "sentiment": len(texts)}
    for stage in comments:
        assert sample(worker, "livetopic_stage_inference_seconds_count", stage=stage) >= 1
    heat = {
        (s.labels["stage"], s.labels["label"]): s.value
        for s in worker.metrics.labels.collect()[0].samples
        if s.name == "livetopic_label_total"
    }
    assert sum(v for (stage, _), v in heat.items() if stage == "game") == sum(
        len(json.loads(o.get("game_labels", "[]"))) for o in out
    )
    assert heat[("general", "Game")] == games


async def test_a_pipeline_with_a_stage_that_does_not_load_is_refused_while_serving(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Hot reload validates the whole pipeline: one broken stage refuses the version, the served one goes on."""
    layers = await asyncio.to_thread(make_layers, tmp_path / "layers")
    repo = tmp_path / "served"
    general = layers["general"] / "1"
    publish_version(repo, lambda out: link_files(general, out), read_manifest(general))
    staging = tmp_path / "staging"
    sources = [parse_stage(f"general={layers['general']}"), parse_stage(f"sentiment={layers['sentiment']}")]
    await asyncio.to_thread(build_pipeline, staging, sources, name="cascade")

    def broken_sentiment(out: Path) -> None:
        link_files(staging / "1", out)
        (out / "sentiment" / "model.safetensors").unlink()
        (out / "sentiment" / "model.safetensors").write_bytes(b"not weights")

    worker = make_worker(redis_server.url, repo, backend="torch", dtype="float32")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(60):
            while not worker.health.readiness()[0]:
                await asyncio.sleep(0.05)
            publish_version(repo, broken_sentiment, read_manifest(staging / "1"))  # intact as published
            worker.poke_reload()
            while sample(worker, "livetopic_model_reloads_total", result="failed") < 1:
                assert not task.done()
                await asyncio.sleep(0.05)
        assert worker.watcher.model is not None and worker.watcher.model.tag == "general:1"
        assert not worker.watcher.model.stages
        assert "stage 'sentiment' does not load" in caplog.text
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
