"""One embedded Redis per data directory: the worker started without --redis-url starts it and records its
address; push, tail and a second worker without --redis-url find and use it; it outlives its starter while
others use it, and the last one to leave stops it."""

from __future__ import annotations

import contextlib
import json
import re
import urllib.request
from pathlib import Path

import pytest
import redis

from worker.tools.embedded import RECORD_NAME
from worker.tools.process import WorkerProcess, child_env

from ..conftest import SAMPLE
from .helpers import livetopic, start, wait_for

N = len(SAMPLE.read_text(encoding="utf-8").splitlines())


def _worker(repo: Path, cwd: Path, name: str) -> WorkerProcess:
    flags = ["--model-repo", str(repo), "--torch-threads", "1", "--group-start-id", "0", "--consumer", name]
    return WorkerProcess(flags, cwd / f"{name}.log", name=name, env=child_env(threads=1), cwd=cwd).start()


def _classified(worker: WorkerProcess) -> float:
    return worker.metric('livetopic_comments_total{outcome="classified"}')


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=5) as reply:
            return int(reply.status) == 200
    except OSError:  # 503 (HTTPError) while it reads, or not listening yet
        return False


def _dashboard_sees(cwd: Path, url: str) -> None:
    """``livetopic dashboard`` without --redis-url serves what the worker published on the embedded server."""
    log = cwd / "dashboard.log"
    proc = start("dashboard", "--port", "0", cwd=cwd, log=log)
    try:
        wait_for(lambda: "dashboard: http://" in log.read_text(), 60, "the dashboard starts", log)
        text = log.read_text()
        assert f"using the embedded redis-server at {url}" in text
        page = re.search(r"dashboard: (http://\S+?)/?\s", text)
        assert page, text
        # the port is bound before the history is read: /readyz says when it is
        wait_for(lambda: _ready(page.group(1)), 60, "the dashboard reads the output stream", log)
        with urllib.request.urlopen(page.group(1) + "/api/view?window=60m", timeout=10) as reply:
            view = json.loads(reply.read())
        totals = {c["name"]: c["total"] for c in view["channels"]}
        assert totals.get("") == N, view["channels"]  # all channels together: what the worker classified
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_commands_share_the_embedded_redis_of_a_data_directory(tiny_repo: Path, tmp_path: Path) -> None:
    record = tmp_path / ".livetopic-redis" / RECORD_NAME
    first = _worker(tiny_repo, tmp_path, "first")
    second: WorkerProcess | None = None
    try:
        first.wait_ready(120)
        started = re.search(r"started an embedded redis-server at (redis://127\.0\.0\.1:\d+/0)", first.log_tail())
        assert started, first.log_tail()
        url = started.group(1)
        assert json.loads(record.read_text())["url"] == url
        pushed = livetopic("push", "--quiet", str(SAMPLE), cwd=tmp_path)
        assert pushed.returncode == 0 and f"using the embedded redis-server at {url}" in pushed.stderr
        wait_for(lambda: _classified(first) == N, 120, "the worker classifies what push sent", first.log_path)
        rows = livetopic("tail", "--no-follow", "--last", "3", cwd=tmp_path).stdout.splitlines()
        last_texts = [json.loads(line)["text"] for line in SAMPLE.read_text(encoding="utf-8").splitlines()[-3:]]
        assert len(rows) == 3 and all(text in row for text, row in zip(last_texts, rows, strict=True))
        with redis.Redis.from_url(url, decode_responses=True) as client:  # closed at once: a client keeps it up
            assert all("text" in fields for _id, fields in client.xrange("livetopic:topics", count=5))  # by default
        _dashboard_sees(tmp_path, url)

        second = _worker(tiny_repo, tmp_path, "second")
        second.wait_ready(120)
        assert f"using the embedded redis-server at {url}" in second.log_tail()
        assert first.stop() == 0  # the starter leaves; the server stays up for the second worker
        assert "left running for" in first.log_tail() and record.exists()
        pushed = livetopic("push", "--quiet", "--limit", "50", str(SAMPLE), cwd=tmp_path)
        assert pushed.returncode == 0 and url in pushed.stderr
        wait_for(
            lambda: _classified(second) == 50, 120, "the second worker classifies on the same server", second.log_path
        )
        assert second.stop() == 0  # the last one out stops it
        second = None
        assert not record.exists()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    finally:
        first.stop()
        if second is not None:
            second.stop()
        if record.exists():  # a failed run must not leave the server behind
            with contextlib.suppress(redis.RedisError):
                redis.Redis(port=json.loads(record.read_text())["port"]).shutdown(nosave=True)
