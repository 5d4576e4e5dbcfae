"""The base install (no ``[train]`` extra) runs the worker, push and training: the processes below cannot import
scikit-learn or matplotlib (each is set to None in ``sys.modules`` before livetopic loads, so any import of
them raises ImportError, as in a venv without them)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import redis

from worker.tools.embedded import EmbeddedRedis, free_port

from ..cli.helpers import run, spawn
from ..conftest import SAMPLE

pytestmark = pytest.mark.slow

WITHOUT_EXTRAS = (
    "import sys; sys.modules.update(sklearn=None, matplotlib=None); "
    "from worker.cli import main; sys.exit(main(sys.argv[1:]))"
)


def base_livetopic(*args: str) -> list[str]:
    return [sys.executable, "-c", WITHOUT_EXTRAS, *args]


def test_the_blocker_really_blocks() -> None:
    done = run([sys.executable, "-c", WITHOUT_EXTRAS.split("; from")[0] + "; import sklearn"], timeout_s=60)
    assert done.returncode != 0 and "ModuleNotFoundError: import of sklearn halted" in done.stderr


def test_worker_push_and_train_without_the_train_extra(
    redis_server: EmbeddedRedis, tiny_repo: Path, tmp_path: Path
) -> None:
    port = free_port()
    worker = spawn(
        base_livetopic(
            "worker",
            "--redis-url",
            redis_server.url,
            "--model-repo",
            str(tiny_repo),
            "--metrics-port",
            str(port),
            "--group-start-id",
            "0",
            "--torch-threads",
            "1",
        ),
        log=tmp_path / "worker.log",
    )
    try:
        pushed = run(base_livetopic("push", "--redis-url", redis_server.url, "--quiet", "--limit", "30", str(SAMPLE)))
        assert pushed.returncode == 0, pushed.stderr
        client = redis.Redis.from_url(redis_server.url)
        deadline = time.monotonic() + 90
        while client.xlen("livetopic:topics") < 30:
            assert worker.poll() is None and time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
        client.close()
    finally:
        worker.terminate()
        code = worker.wait(timeout=60)
    assert code == 0, (tmp_path / "worker.log").read_text()
    trained = run(
        base_livetopic(
            "train",
            "--data",
            str(SAMPLE),
            "--out",
            str(tmp_path / "repo"),
            "--preset",
            "tiny",
            "--epochs",
            "1",
            "--agreement-n",
            "0",
            "--quiet",
            "--threads",
            "1",
            "--run-dir",
            str(tmp_path / "run"),
        ),
        timeout_s=240,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (tmp_path / "repo" / "1" / "livetopic.json").is_file()
    assert (tmp_path / "run" / "metrics.jsonl").is_file() and not (tmp_path / "run" / "curves.png").exists()
    # the default n-gram member needs scikit-learn: without it the encoder is trained alone, and the log says so
    assert (
        "without its n-gram member" in trained.stderr and not (tmp_path / "repo" / "1" / "ngrams.safetensors").exists()
    )
    asked = run(
        base_livetopic("train", "--data", str(SAMPLE), "--out", str(tmp_path / "r2"), "--ngrams"), timeout_s=120
    )
    assert asked.returncode == 2 and "needs scikit-learn" in asked.stderr  # asked for by name: an error, not a warning
