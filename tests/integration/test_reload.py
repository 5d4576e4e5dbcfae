"""Hot reload against a real Redis: a good version swaps in while comments flow, bad ones are refused."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from worker.inputs import read_records
from worker.model.repository import MANIFEST_NAME, publish_version, read_manifest
from worker.model.untrained import init_version
from worker.service.worker import Worker
from worker.streams.producer import StreamProducer
from worker.tools.embedded import EmbeddedRedis

from ..conftest import LABELS, SAMPLE
from ..inprocess import make_worker, sample
from ..versions import strip_file_list
from .helpers import entries


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


async def test_hot_reload_while_flowing(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tiny_repo: Path, tmp_path: Path
) -> None:
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
            pushed.extend(await producer.add(records[len(pushed) % 300 :][:20]))
            await asyncio.sleep(0.05)

    async def wait_for(predicate, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await asyncio.sleep(0.05)

    try:
        await flow(5)
        # Bad versions are refused while serving continues (each becomes the newest in turn).
        for damage in (corrupt_weights, drop_tokenizer, mismatch_labels):
            before = sample(worker, "livetopic_model_reloads_total", result="failed")
            await asyncio.to_thread(publish_damaged, repo, tmp_path / f"staging-{damage.__name__}", damage)
            worker.poke_reload()
            await asyncio.gather(
                flow(5), wait_for(lambda b=before: sample(worker, "livetopic_model_reloads_total", result="failed") > b)
            )
            assert served(worker) == 1
        # A good version swaps in within 10 s, while comments keep flowing.
        good = await asyncio.to_thread(
            init_version, repo, preset="tiny", labels=LABELS, texts=texts, name="tiny", seed=2
        )
        await asyncio.gather(flow(10), wait_for(lambda: served(worker) == good))
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
    assert sample(worker, "livetopic_model_reloads_total", result="ok") == 1
    assert sample(worker, "livetopic_model_reloads_total", result="failed") == 3
    assert (await redis_client.xpending("livetopic:comments", "livetopic"))["pending"] == 0


async def test_pinned_version_is_not_reloaded(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tiny_repo: Path, tmp_path: Path
) -> None:
    """A newer version is in the repository from the start: the worker pinned to 1 serves 1 (an unpinned one would
    start on 2), scores with it, and runs no watcher that could swap it later."""
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    texts = SAMPLE.read_text(encoding="utf-8").splitlines()
    await asyncio.to_thread(init_version, repo, preset="tiny", labels=LABELS, texts=texts, name="tiny")
    worker = make_worker(redis_server.url, repo, model_version=1)
    ids = await StreamProducer(redis_client, "livetopic:comments").add([{"text": t} for t in texts[:10]])
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(60):
            while await redis_client.xlen("livetopic:topics") < len(ids):
                assert not task.done()
                await asyncio.sleep(0.05)
        running = {t.get_name() for t in asyncio.all_tasks()}
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert {"read-0", "score"} <= running and "reload" not in running  # the stages run, no watcher does
    assert {o["model"] for o in await entries(redis_client, "livetopic:topics")} == {"tiny:1"}


def served(worker: Worker) -> int | None:
    """The version the worker serves (None before the first)."""
    return worker.watcher.model.version if worker.watcher.model is not None else None


def skipped(worker: Worker) -> dict[str, float]:
    """``livetopic_model_versions_skipped`` by reason."""
    return {
        s.labels["reason"]: s.value
        for family in worker.metrics.registry.collect()
        if family.name == "livetopic_model_versions_skipped"
        for s in family.samples
    }


@pytest.mark.parametrize("file_list", [True, False], ids=["manifest-lists-files", "manifest-without-file-list"])
async def test_a_version_copied_manifest_first_is_served_once_complete(
    redis_server: EmbeddedRedis, tiny_repo: Path, tmp_path: Path, file_list: bool
) -> None:
    """A copy that breaks the manifest-last contract (``cp``, ``rsync`` and ``kubectl cp`` choose their own order):
    the version is not served while its files are missing, and is served (hot reload) once they are all there.
    With the file list its manifest carries, it is skipped as incomplete without being loaded; without one (a
    version published before manifests listed their files), loading it fails and it is tried again when any of
    its files changes."""
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo, ignore=shutil.ignore_patterns(".onnx"))
    staging = tmp_path / "staging"
    texts = SAMPLE.read_text(encoding="utf-8").splitlines()
    await asyncio.to_thread(init_version, staging, preset="tiny", labels=LABELS, texts=texts, name="tiny", seed=2)
    source = staging / "1"
    if not file_list:
        strip_file_list(source)
    worker = make_worker(redis_server.url, repo, reload_interval_s=0.2, backend="torch", dtype="float32")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))

    async def wait_for(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(30):
            while not predicate():
                if task.done():
                    task.result()
                    raise AssertionError(f"worker stopped while waiting for {what}")
                await asyncio.sleep(0.05)

    try:
        await wait_for(lambda: worker.health.readiness()[0], "ready on version 1")
        target = repo / "2"
        target.mkdir()
        shutil.copy(source / MANIFEST_NAME, target / MANIFEST_NAME)  # the manifest first
        worker.poke_reload()
        if file_list:
            await wait_for(lambda: skipped(worker).get("incomplete") == 1, "version 2 skipped as incomplete")
        else:
            await wait_for(
                lambda: sample(worker, "livetopic_model_reloads_total", result="failed") == 1, "version 2 refused"
            )
        assert served(worker) == 1
        for item in sorted(source.iterdir()):  # then the rest, one file after another
            if item.name != MANIFEST_NAME and item.is_file():
                shutil.copy(item, target / item.name)
                worker.poke_reload()
                await asyncio.sleep(0.1)
        await wait_for(lambda: served(worker) == 2, "version 2 served")
        assert set(skipped(worker).values()) == {0}
        assert sample(worker, "livetopic_model_reloads_total", result="ok") == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
