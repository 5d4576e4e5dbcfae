"""The model repository under faults: a broken newest version does not stop new workers (they start on the newest
version that loads and say what they skipped), a version that leaves the repository through a symlink is refused,
and an ONNX graph planted in a cache directory is never served."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from worker.errors import LivetopicError, ModelError
from worker.model import onnx_export
from worker.model.contents import sha256_of
from worker.model.load import load_model
from worker.model.untrained import init_version
from worker.service.health import Health
from worker.service.metrics import Metrics
from worker.service.reload import ModelWatcher
from worker.tools.embedded import EmbeddedRedis

from ..conftest import LABELS, SAMPLE
from ..versions import garbage_weights, republish, strip_file_list, truncate_weights
from .harness import INPUT, OUTPUT, wait_until
from .soak import every_comment_once

TEXTS = SAMPLE.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def repo(tiny_repo: Path, tmp_path: Path) -> Path:
    out = tmp_path / "repo"
    shutil.copytree(tiny_repo, out, ignore=shutil.ignore_patterns(onnx_export.ONNX_DIR))
    return out


# --- a broken newest version: a new worker starts on the newest version that loads ----------------------------
@pytest.mark.slow
def test_a_new_worker_starts_on_the_newest_version_that_loads(
    redis_server: EmbeddedRedis, repo: Path, start_worker: Callable[..., Any]
) -> None:
    """REPO/3 with truncated weights while 1 and 2 are fine: the worker process becomes ready on 2, with a WARNING
    naming 3 and why, and the skipped-versions metric; it serves every comment with version 2."""
    republish(repo, repo / "1")
    republish(repo, repo / "1")
    truncate_weights(repo / "3")  # after its publication: the newest version on disk is broken
    worker = start_worker(redis_server.url, repo)  # ready, not exited 2
    log = worker.log()
    assert any(
        "WARNING" in line and "version 3" in line and "model.safetensors" in line for line in log.splitlines()
    ), log
    assert worker.metric('livetopic_model_versions_skipped{reason="incomplete"}') == 1
    assert worker.metric("livetopic_model_versions_skipped") == 1
    served = [k for k, v in worker.metrics().items() if k.startswith("livetopic_model_info{") and v == 1]
    assert len(served) == 1 and 'version="2"' in served[0], served
    client = redis.Redis.from_url(redis_server.url)
    try:
        for text in TEXTS[:20]:
            client.xadd(INPUT, {"text": text})
        wait_until(lambda: client.xlen(OUTPUT) >= 20, 60, "20 results")
        models = {fields[b"model"] for _, fields in client.xrange(OUTPUT)}
        assert models == {b"tiny:2"}
    finally:
        client.close()
    assert worker.stop() == 0


@pytest.mark.slow
def test_soak_with_a_broken_newest_version_every_comment_once(tmp_path: Path) -> None:
    """The soak's broken-version phase in small: while comments flow through two workers, a broken newest version
    is published and one worker is restarted; the replacement starts on version 1, and every comment comes out
    exactly once."""
    summary = every_comment_once(200, tmp_path, rate=25, broken_versions=1)
    phases = [e for e in summary["events"] if "broken_version" in e]
    assert len(phases) == 1 and phases[0]["broken_version"] == 2 and phases[0]["skipped"] == 1
    assert list(summary["retired_workers"].values()) == [0]  # the restarted worker drained and exited 0


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(1)
    yield executor
    executor.shutdown()


def watcher_of(repo: Path, pool: ThreadPoolExecutor, metrics: Metrics) -> ModelWatcher:
    return ModelWatcher(
        repo,
        executor=pool,
        metrics=metrics,
        health=Health(metrics),
        interval_s=0.1,
        device="cpu",
        dtype="float32",
        backend="torch",
    )


def skipped(metrics: Metrics) -> dict[str, float]:
    return {
        s.labels["reason"]: s.value
        for family in metrics.registry.collect()
        if family.name == "livetopic_model_versions_skipped"
        for s in family.samples
    }


def link_outside(repo: Path, elsewhere: Path) -> None:
    """The next version of ``repo`` is a symlink to a good version directory outside it."""
    init_version(elsewhere, preset="tiny", labels=LABELS, texts=TEXTS, name="outside", seed=5)
    number = max(int(p.name) for p in repo.iterdir() if p.name.isdigit()) + 1
    (repo / str(number)).symlink_to(elsewhere / "1", target_is_directory=True)


def legacy_truncated(repo: Path) -> None:
    """A version published before manifests listed their files (no checklist), weights truncated."""
    vdir = repo / str(republish(repo, repo / "1", truncate_weights))
    strip_file_list(vdir)


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        (lambda repo, tmp: republish(repo, repo / "1", garbage_weights), "failed"),  # listed as published, broken
        (lambda repo, tmp: truncate_weights(repo / str(republish(repo, repo / "1"))), "incomplete"),
        (lambda repo, tmp: legacy_truncated(repo), "failed"),
        (lambda repo, tmp: link_outside(repo, tmp / "elsewhere"), "outside"),
    ],
    ids=["garbage-weights", "truncated", "truncated-without-checklist", "symlink-outside"],
)
async def test_start_skips_a_broken_newest_version(
    repo: Path,
    tmp_path: Path,
    pool: ThreadPoolExecutor,
    breakage: Callable[[Path, Path], object],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    breakage(repo, tmp_path)
    metrics = Metrics()
    watcher = watcher_of(repo, pool, metrics)
    with caplog.at_level(logging.WARNING, logger="worker"):
        model = await watcher.first_model(None, asyncio.Event(), pool)
    assert model is not None and model.version == 1
    assert skipped(metrics) == {"incomplete": 0, "failed": 0, "refused": 0, "outside": 0, reason: 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("version 2" in w and "skipped" in w for w in warnings), warnings


async def test_a_version_outside_the_repository_is_refused_with_the_reason(repo: Path, tmp_path: Path) -> None:
    link_outside(repo, tmp_path / "elsewhere")
    with pytest.raises(LivetopicError, match="outside the model repository"):
        load_model(repo, device="cpu", dtype="float32", backend="torch")
    (tmp_path / "weights").mkdir()
    for name in os.listdir(repo / "1"):  # a file of a version may not leave the repository either
        if name.endswith(".safetensors"):
            shutil.move(repo / "1" / name, tmp_path / "weights" / name)
            (repo / "1" / name).symlink_to(tmp_path / "weights" / name)
    with pytest.raises(LivetopicError, match="outside the model repository"):
        load_model(repo, 1, device="cpu", dtype="float32", backend="torch")


async def test_start_fails_when_no_version_loads(repo: Path, pool: ThreadPoolExecutor) -> None:
    """Nothing to serve at all (every version broken) is a configuration fault: the worker exits 2."""
    garbage_weights(repo / "1")
    republish(repo, repo / "1")
    watcher = watcher_of(repo, pool, Metrics())
    with pytest.raises(LivetopicError, match=r"no version of .* loads"):
        await watcher.first_model(None, asyncio.Event(), pool)


# --- the ONNX cache: a planted graph is never served ------------------------------------------------------------
@pytest.fixture
def read_only_version(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Version 1 of ``repo`` where the version's own cache cannot be used and the user's cache cannot be written:
    the export goes to the temporary directory (``tmp_path/tmp``, private to this test)."""
    (repo / "1" / onnx_export.ONNX_DIR).write_text("not a directory")
    (tmp_path / "no-cache").write_text("a file, so no cache directory can be made under it")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return repo / "1"


def planted_graph(tmp_path: Path) -> bytes:
    """A valid float32 graph of another network (other weights: other scores)."""
    other = tmp_path / "other"
    init_version(other, preset="tiny", labels=LABELS, texts=TEXTS, name="other", seed=9)
    return onnx_export.onnx_graph(other / "1", "float32").read_bytes()


def temp_root() -> Path:
    return Path(tempfile.gettempdir()) / f"livetopic-onnx-{os.getuid()}"


# how a graph is planted → why its directory is refused (None: the directory is trusted, the graph is checked)
PLANTINGS = {
    "foreign-directory": "not owned by this user",
    "world-writable-directory": "writable by every user",
    "replaced-graph": None,
    "graph-without-record": None,
}


@pytest.mark.parametrize("planting", PLANTINGS)
def test_a_planted_graph_is_never_served(
    read_only_version: Path,
    tmp_path: Path,
    planting: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A valid graph of another network at the path a worker looks its graph up in the temporary directory (the
    only place it can write here): never served. A directory someone else could write is not used at all (here
    nowhere else is left, so ONNX Runtime is refused and ``auto`` serves PyTorch); a graph whose sha256 is not
    the one recorded when this user exported it is exported again."""
    vdir = read_only_version
    reference = load_model(vdir, device="cpu", dtype="float32", backend="torch", smoke_test=False)
    expected = reference.predict_texts(TEXTS[:8])
    graph = temp_root() / f"model-float32-{onnx_export.cache_key(vdir, 'float32')}.onnx"
    planted = planted_graph(tmp_path)
    if planting == "replaced-graph":  # a graph this user exported, replaced afterwards
        assert onnx_export.onnx_graph(vdir, "float32") == graph
        graph.write_bytes(planted)
    else:
        mode = 0o777 if planting == "world-writable-directory" else 0o700
        graph.parent.mkdir()
        graph.parent.chmod(mode)
        graph.write_bytes(planted)
        if planting == "foreign-directory":  # as if another user made it: this process is someone else
            monkeypatch.setattr(os, "geteuid", lambda: graph.parent.stat().st_uid + 1)
    refusal = PLANTINGS[planting]
    with caplog.at_level(logging.INFO, logger="worker"):
        if refusal is not None:
            with pytest.raises(ModelError, match=refusal):
                load_model(vdir, device="cpu", dtype="float32", backend="onnxruntime")
            model = load_model(vdir, device="cpu", dtype="float32")  # auto: served by PyTorch instead
            assert model.backend_name == "torch"
        else:
            model = load_model(vdir, device="cpu", dtype="float32", backend="onnxruntime")
            assert model.backend.graph == graph and graph.read_bytes() != planted  # exported again, in its place
            assert onnx_export.recorded_sha256(graph, vdir) == sha256_of(graph)
    assert np.abs(model.predict_texts(TEXTS[:8]) - expected).max() < 1e-5  # the version's scores, not the plant's
    said = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert str(graph.parent) in said or str(graph) in said, said
    assert (refusal or "sha256") in said, said


def test_the_cache_directory_is_created_private(read_only_version: Path) -> None:
    graph = onnx_export.onnx_graph(read_only_version, "float32")
    assert graph.parent == temp_root()
    assert stat.S_IMODE(graph.parent.stat().st_mode) == 0o700


async def test_a_pinned_version_still_being_copied_is_waited_for(repo: Path, pool: ThreadPoolExecutor) -> None:
    republish(repo, repo / "1")
    weights = (repo / "2" / "model.safetensors").read_bytes()
    (repo / "2" / "model.safetensors").write_bytes(weights[:100])  # the copy has not finished
    watcher = watcher_of(repo, pool, Metrics())
    task = asyncio.create_task(watcher.first_model(2, asyncio.Event(), pool))
    async with asyncio.timeout(30):
        while watcher.waiting is None or "incomplete" not in watcher.waiting:
            assert not task.done(), task.result()
            await asyncio.sleep(0.05)
    (repo / "2" / "model.safetensors").write_bytes(weights)
    watcher.poke()
    model = await asyncio.wait_for(task, 30)
    assert model is not None and model.version == 2 and watcher.waiting is None
