"""Everyday mistakes end in one clear line on stderr and a non-zero exit, quickly; a traceback only with --debug."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from worker.tools.embedded import EmbeddedRedis
from worker.tools.process import child_env

from ..conftest import SAMPLE
from .helpers import livetopic, one_line_error, start, wait_for

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_push_to_a_wrong_redis_url_fails_fast() -> None:
    started = time.monotonic()
    proc = livetopic("push", "--redis-url", NOWHERE, "--quiet", str(SAMPLE), timeout_s=60)
    one_line_error(proc, "cannot reach Redis at redis://127.0.0.1:1/0", "Connection refused", "--redis-url")
    assert time.monotonic() - started < 20  # not minutes of silent retries


def test_tail_to_a_wrong_redis_url_fails_fast() -> None:
    env = child_env(threads=1, extra={"LIVETOPIC_REDIS_URL": "redis://:secret@127.0.0.1:1/0"})
    proc = livetopic("tail", env=env, timeout_s=60)
    line = one_line_error(proc, "cannot reach Redis at redis://:***@127.0.0.1:1/0")
    assert "secret" not in line


def test_metrics_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = livetopic(
            "worker", "--redis-url", NOWHERE, "--model-repo", str(tmp_path), "--metrics-port", str(port), timeout_s=90
        )
    one_line_error(
        proc, f"127.0.0.1:{port}", "address already in use", "each worker on a host needs its own --metrics-port"
    )


def test_invalid_and_unknown_settings() -> None:
    one_line_error(livetopic("worker", "--max-batch-size", "0"), "--max-batch-size")
    env = child_env(threads=1, extra={"LIVETOPIC_MAX_BATCH": "8"})
    one_line_error(livetopic("push", str(SAMPLE), env=env), "unknown setting", "LIVETOPIC_MAX_BATCH")


def test_missing_files(redis_server: EmbeddedRedis) -> None:
    one_line_error(livetopic("push", "--redis-url", redis_server.url, "/no/such/file.jsonl"), "no such file")
    one_line_error(livetopic("train", "--data", "/no/such/dir", "--out", "/tmp/never"), "/no/such/dir")
    one_line_error(livetopic("evaluate", "--model", "/no/such/repo", "--data", str(SAMPLE)), "/no/such/repo")


def test_debug_shows_the_traceback() -> None:
    proc = livetopic("tail", "--redis-url", NOWHERE, "--debug", timeout_s=60)
    assert proc.returncode != 0 and "Traceback (most recent call last)" in proc.stderr
    assert "RedisUnavailableError: cannot reach Redis" in proc.stderr
    before = livetopic("--debug", "tail", "--redis-url", NOWHERE, timeout_s=60)
    assert "Traceback (most recent call last)" in before.stderr


def test_dashboard_port_in_use(redis_server: EmbeddedRedis) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = livetopic("dashboard", "--redis-url", redis_server.url, "--port", str(port), timeout_s=60)
    assert proc.returncode == 2
    one_line_error(proc, f"cannot serve the dashboard on 127.0.0.1:{port}", "address already in use", "--port")


def test_negative_rate_is_refused() -> None:
    proc = livetopic("push", "--rate", "-5", "--redis-url", NOWHERE, str(SAMPLE))
    assert proc.returncode == 2
    one_line_error(proc, "--rate: Input should be greater than 0")


def test_an_empty_file_is_a_warning(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    empty = tmp_path / "chat.jsonl"
    empty.touch()
    proc = livetopic("push", "--redis-url", redis_server.url, "--quiet", str(empty))
    assert proc.returncode == 1 and proc.stderr.splitlines() == [
        f"livetopic: warning: nothing to push: {empty} is empty"
    ], proc.stderr
    both = livetopic("push", "--redis-url", redis_server.url, "--quiet", "--limit", "5", str(empty), str(SAMPLE))
    assert both.returncode == 0 and f"livetopic: warning: {empty} is empty" in both.stderr.splitlines(), both.stderr
    assert "pushed 5 comments" in both.stderr


def test_worker_with_a_model_repo_that_does_not_exist(tmp_path: Path) -> None:
    proc = livetopic("worker", "--redis-url", NOWHERE, "--model-repo", str(tmp_path / "modles"), timeout_s=60)
    assert proc.returncode == 2
    one_line_error(proc, f"--model-repo {tmp_path / 'modles'}: the directory does not exist")


def test_worker_help_describes_the_service() -> None:
    proc = livetopic("worker", "--help")
    assert proc.returncode == 0
    description = proc.stdout.split("\n\n")[1]  # argparse: usage, blank line, description
    assert description.startswith("The service: reads the input stream"), proc.stdout[:600]


def test_worker_says_its_redis_host_does_not_resolve(tiny_repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    worker = start(
        "worker",
        "--redis-url",
        "redis://no-such-host.invalid:6379/0",
        "--model-repo",
        str(tiny_repo),
        "--metrics-port",
        "0",
        "--torch-threads",
        "1",
        cwd=tmp_path,
        log=log,
    )
    try:
        wait_for(lambda: "cannot resolve" in log.read_text(errors="replace"), 120, "the worker says why", log)
        line = next(line for line in log.read_text().splitlines() if "cannot resolve" in line)
        assert "cannot resolve the Redis host 'no-such-host.invalid'" in line and "a typo in the URL" in line, line
        assert worker.poll() is None  # it waits for its Redis (not ready), as it does for one that restarts
    finally:
        worker.terminate()
        assert worker.wait(timeout=60) == 0
