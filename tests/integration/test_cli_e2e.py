"""The CLI as subprocesses: a worker process, ``livetopic push`` and ``livetopic tail``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from worker.model.load import load_model
from worker.tools.embedded import EmbeddedRedis

from ..conftest import LABELS, ROOT, SAMPLE, worker_env


def livetopic(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=worker_env(),
        cwd=ROOT,
        check=False,
    )


def check_outputs(url: str, n: int) -> list[dict[str, str]]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        out = [fields for _id, fields in client.xrange("livetopic:topics")]
        assert len(out) == n
        assert len({o["source_id"] for o in out}) == n  # each source_id once
        for entry in out:
            scores = json.loads(entry["scores"])
            assert set(scores) == set(LABELS) and all(0.0 <= v <= 1.0 for v in scores.values())
            assert set(json.loads(entry["labels"])) <= set(LABELS)
        assert client.xpending("livetopic:comments", "livetopic")["pending"] == 0
        return out
    finally:
        client.close()


def wait_classified(worker: Any, n: int, timeout_s: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while worker.metric('livetopic_comments_total{outcome="classified"}') < n:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.2)


def test_worker_push_tail_processes(redis_server: EmbeddedRedis, tiny_repo: Path, start_worker: Any) -> None:
    worker = start_worker(redis_server.url, tiny_repo)
    assert worker.get("/healthz")[0] == 200
    pushed = livetopic("push", "--redis-url", redis_server.url, "--quiet", str(SAMPLE))
    assert pushed.returncode == 0, pushed.stderr
    n = len(SAMPLE.read_text(encoding="utf-8").splitlines())
    assert f"pushed {n} comments" in pushed.stderr
    tail = livetopic("tail", "--redis-url", redis_server.url, "--from-start", "--count", "5", "--json")
    assert tail.returncode == 0, tail.stderr
    assert len(tail.stdout.splitlines()) == 5 and "source_id" in json.loads(tail.stdout.splitlines()[0])
    wait_classified(worker, n)
    check_outputs(redis_server.url, n)
    _, metrics = worker.get("/metrics")
    for name in (
        "livetopic_batch_size_bucket",
        "livetopic_batch_tokens_bucket",
        "livetopic_inference_seconds",
        "livetopic_end_to_end_seconds",
        "livetopic_pending_comments",
        "livetopic_label_total",
    ):
        assert name in metrics
    served = load_model(tiny_repo, device="cpu", smoke_test=False)  # auto, as the worker resolves it (fallbacks too)
    device, backend, dtype = served.device, served.backend_name, served.dtype_name
    info = f'livetopic_model_info{{backend="{backend}",device="{device}",dtype="{dtype}",name="tiny",version="1"}} 1.0'
    assert info in metrics.splitlines()
    assert worker.stop() == 0  # SIGTERM: graceful, exit 0


def test_2000_real_comments(
    redis_server: EmbeddedRedis, tiny_repo: Path, start_worker: Any, tvl_chat_dir: Path
) -> None:
    worker = start_worker(redis_server.url, tiny_repo)
    pushed = livetopic("push", "--redis-url", redis_server.url, "--quiet", "--limit", "2000", str(tvl_chat_dir))
    assert pushed.returncode == 0, pushed.stderr
    wait_classified(worker, 2000)
    check_outputs(redis_server.url, 2000)
    assert worker.metric('livetopic_comments_total{outcome="classified"}') == 2000
    assert worker.stop() == 0


def test_clear_errors(redis_server: EmbeddedRedis) -> None:
    missing = livetopic("push", "--redis-url", redis_server.url, "/no/such/file.jsonl")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    bad = livetopic("worker", "--max-batch-size", "0")
    assert bad.returncode == 2 and "--max-batch-size" in bad.stderr
    # more mistakes, and a worker waiting for its first model: tests/cli
