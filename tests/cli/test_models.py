"""A worker and its model repository, as a user meets them: it waits (not ready, saying why) until a first
version appears, then serves; it refuses a version that changes the labels unless that version says the change
is intended; versions are readable by every user; results leave the comment text out on request."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import redis

from worker.tools.embedded import EmbeddedRedis
from worker.tools.process import WorkerProcess, child_env

from ..conftest import SAMPLE
from .helpers import livetopic, wait_for


def _init(repo: Path, labels: list[str] | None = None) -> None:
    """A version published in-process (cheaper than one more interpreter with torch)."""
    from worker.model.untrained import init_version

    init_version(repo, preset="tiny", labels=labels or ["Cheer", "Game", "Broadcast", "Chat"],
                 texts=SAMPLE.read_text(encoding="utf-8").splitlines())


@pytest.mark.slow
def test_worker_waits_for_its_first_model_then_guards_its_labels(redis_server: EmbeddedRedis,
                                                                 tmp_path: Path) -> None:
    repo = tmp_path / "models"  # does not exist yet: a volume the trainer has not written to
    flags = ["--redis-url", redis_server.url, "--model-repo", str(repo), "--torch-threads", "1",
             "--group-start-id", "0", "--reload-interval-s", "0.5", "--no-output-text"]
    worker = WorkerProcess(flags, tmp_path / "worker.log", env=child_env(threads=1), cwd=tmp_path).start()
    try:
        wait_for(lambda: _readyz(worker)[0] == 503, 120, "the worker answers /readyz", worker.log_path)
        status, body = _readyz(worker)
        assert status == 503 and body["reason"] == f"waiting for a first model version in {repo}"
        assert "waiting for a first model version" in worker.log_tail()
        worker.check_alive()  # not crash-looping

        _init(repo)  # the first version lands: the worker turns ready and serves it
        worker.wait_ready(120)
        pushed = livetopic("push", "--redis-url", redis_server.url, "--quiet", "--limit", "20", str(SAMPLE))
        assert pushed.returncode == 0, pushed.stderr
        wait_for(lambda: worker.metric('livetopic_comments_total{outcome="classified"}') == 20, 60,
                 "the worker classifies", worker.log_path)
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        results = [fields for _id, fields in client.xrange("livetopic:topics")]
        assert len(results) == 20 and not any("text" in r for r in results)  # --no-output-text

        _init(repo, ["加油", "閒聊"])  # labels changed without saying so: refused, version 1 serves on
        wait_for(lambda: worker.metric('livetopic_model_reloads_total{result="refused"}') == 1, 60,
                 "the label change is refused", worker.log_path)
        assert "model version 2 refused, still serving livetopic:1: it changes the labels" in worker.log_tail()
        assert 'version="1"' in worker.get("/metrics")[1]

        proc = livetopic("model", "init", "--preset", "tiny", "--vocab-from", str(SAMPLE), "--out", str(repo),
                         "--labels", "加油,閒聊", "--change-labels")  # intended: swapped in
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: worker.metric('livetopic_model_reloads_total{result="ok"}') == 1, 60,
                 "the intended label change is served", worker.log_path)
        assert 'version="3"' in worker.get("/metrics")[1]
        assert worker.stop() == 0
    finally:
        worker.stop()
    for path in [repo / "1", *(repo / "1").iterdir()]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))


def _readyz(worker: WorkerProcess) -> tuple[int, dict[str, object]]:
    try:
        status, body = worker.get("/readyz")
    except OSError:
        return 0, {}
    return status, json.loads(body)
