"""Hot reload against a real Redis: a good version swaps in while comments flow, bad ones are refused."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import redis.asyncio as aioredis

from worker.inputs import read_records
from worker.model.repository import MANIFEST_NAME, publish_version, read_manifest
from worker.model.untrained import init_version
from worker.streams.producer import StreamProducer
from worker.tools.embedded import EmbeddedRedis

from ..conftest import LABELS, SAMPLE
from .helpers import entries, make_worker


def corrupt_weights(vdir: Path) -> None:
    (vdir / "model.safetensors").write_bytes(b"this is not a safetensors file")


def drop_tokenizer(vdir: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (vdir / name).unlink(missing_ok=True)


def mismatch_labels(vdir: Path) -> None:
    """The manifest names a label the network has no output for (and says the label change is intended, so the
    worker gets as far as loading it)."""
    manifest = (vdir / MANIFEST_NAME).read_text()
    manifest = manifest.replace('"labels_change_intended": false', '"labels_change_intended": true')
    (vdir / MANIFEST_NAME).write_text(manifest.replace('"Chat"', '"Chat",\n    "Extra"'))


def publish_damaged(repo: Path, staging: Path, damage) -> int:  # type: ignore[no-untyped-def]
    """Build a version in ``staging``, damage it, then publish it into ``repo`` as one atomic version."""
    texts = SAMPLE.read_text(encoding="utf-8").splitlines()
    version = init_version(staging, preset="tiny", labels=LABELS, texts=texts, name="tiny", seed=1)
    vdir = staging / str(version)
    damage(vdir)
    manifest = read_manifest(vdir)

    def write(out: Path) -> None:
        for item in vdir.iterdir():
            if item.name != MANIFEST_NAME:
                shutil.copy(item, out / item.name)

    return publish_version(repo, write, manifest)


async def test_hot_reload_while_flowing(redis_server: EmbeddedRedis, redis_client: aioredis.Redis,
                                        tiny_repo: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    texts = SAMPLE.read_text(encoding="utf-8").splitlines()
    worker = make_worker(redis_server.url, repo, reload_interval_s=0.2)
    producer = StreamProducer(redis_client, "livetopic:comments")
    records = [r.fields for r in read_records([SAMPLE])]
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    pushed: list[str] = []

    async def flow(rounds: int) -> None:
        for _ in range(rounds):
            pushed.extend(await producer.add(records[len(pushed) % 300:][:20]))
            await asyncio.sleep(0.05)

    async def wait_for(predicate, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await asyncio.sleep(0.05)

    try:
        await flow(5)
        # Bad versions are refused while serving continues (each becomes the newest in turn).
        for damage in (corrupt_weights, drop_tokenizer, mismatch_labels):
            before = worker.metrics.reloads.labels(result="failed")._value.get()
            await asyncio.to_thread(publish_damaged, repo, tmp_path / f"staging-{damage.__name__}", damage)
            worker.poke_reload()
            await asyncio.gather(flow(5), wait_for(
                lambda b=before: worker.metrics.reloads.labels(result="failed")._value.get() > b))
            assert worker.model is not None and worker.model.version == 1
        # A good version swaps in within 10 s, while comments keep flowing.
        good = await asyncio.to_thread(init_version, repo, preset="tiny", labels=LABELS, texts=texts,
                                       name="tiny", seed=2)
        await asyncio.gather(flow(10), wait_for(lambda: worker.model is not None and worker.model.version == good))
        await flow(5)
        async with asyncio.timeout(30):
            while await redis_client.xlen("livetopic:topics") < len(pushed):
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    out = await entries(redis_client, "livetopic:topics")
    assert sorted(o["source_id"] for o in out) == sorted(pushed)  # nothing lost, nothing twice
    models = {o["model"] for o in out}
    assert models == {"tiny:1", f"tiny:{good}"}
    # each output names the version that scored it: after the swap, only the new one
    order = [o["model"] for o in out]
    first_new = order.index(f"tiny:{good}")
    assert set(order[first_new:]) == {f"tiny:{good}"}
    assert worker.metrics.reloads.labels(result="ok")._value.get() == 1
    assert worker.metrics.reloads.labels(result="failed")._value.get() == 3
    assert (await redis_client.xpending("livetopic:comments", "livetopic"))["pending"] == 0


async def test_pinned_version_is_not_reloaded(redis_server: EmbeddedRedis, redis_client: aioredis.Redis,
                                              tiny_repo: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    texts = SAMPLE.read_text(encoding="utf-8").splitlines()
    await asyncio.to_thread(init_version, repo, preset="tiny", labels=LABELS, texts=texts, name="tiny")
    worker = make_worker(redis_server.url, repo, model_version=1)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(30):
            while worker.model is None or not worker.readiness()[0]:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert worker.model.version == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
