"""A worker and its model repository, as a user meets them: it waits (not ready, saying why) until a first
version appears, then serves; it refuses a version that changes the labels unless that version says the change
is intended; versions are readable by every user; results leave the comment text out on request."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import redis

from worker.errors import LivetopicError
from worker.tools.embedded import EmbeddedRedis
from worker.tools.process import WorkerProcess, child_env

from ..conftest import SAMPLE
from .helpers import livetopic, one_line_error, reloading_worker_flags, run_command, wait_for, wait_for_metric


def _init(repo: Path, labels: list[str] | None = None) -> None:
    """A version published in-process (cheaper than one more interpreter with torch)."""
    from worker.model.untrained import init_version

    init_version(
        repo,
        preset="tiny",
        labels=labels or ["Cheer", "Game", "Broadcast", "Chat"],
        texts=SAMPLE.read_text(encoding="utf-8").splitlines(),
    )


@pytest.mark.slow
def test_worker_waits_for_its_first_model_then_guards_its_labels(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    repo = tmp_path / "models"  # empty: a volume the trainer has not written to yet
    repo.mkdir()
    flags = reloading_worker_flags(redis_server.url, repo, "--no-output-text")
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
        wait_for_metric(worker, 'livetopic_comments_total{outcome="classified"}', 20, 60, "the worker classifies")
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        results = [fields for _id, fields in client.xrange("livetopic:topics")]
        assert len(results) == 20 and not any("text" in r for r in results)  # --no-output-text

        _init(repo, ["加油", "閒聊"])  # labels changed without saying so: refused, version 1 serves on
        wait_for_metric(worker, 'livetopic_model_reloads_total{result="refused"}', 1, 60, "the label change is refused")
        assert "model version 2 refused, still serving livetopic:1: it changes the labels" in worker.log_tail()
        assert 'version="1"' in worker.get("/metrics")[1]

        proc = livetopic(
            "model",
            "init",
            "--preset",
            "tiny",
            "--vocab-from",
            str(SAMPLE),
            "--out",
            str(repo),
            "--labels",
            "加油,閒聊",
            "--change-labels",
        )  # intended: swapped in
        assert proc.returncode == 0, proc.stderr
        wait_for_metric(
            worker, 'livetopic_model_reloads_total{result="ok"}', 1, 60, "the intended label change is served"
        )
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


def _scores(redis_url: str) -> dict[str, tuple[str, dict[str, float]]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return {f["source_id"]: (f["model"], json.loads(f["scores"])) for _id, f in client.xrange("livetopic:topics")}


@pytest.mark.slow
def test_rollback_and_promote_are_hot_reloaded_by_running_workers(
    redis_server: EmbeddedRedis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The repository verbs run in this process (the workers are the processes that matter here)."""
    from worker.model.load import load_model
    from worker.model.untrained import init_version

    repo, texts = tmp_path / "models", SAMPLE.read_text(encoding="utf-8").splitlines()
    for seed in (0, 1):  # two versions of the same labels, different weights
        init_version(repo, preset="tiny", labels=["Cheer", "Game", "Broadcast", "Chat"], texts=texts, seed=seed)
    flags = reloading_worker_flags(redis_server.url, repo, "--dtype", "float32", "--backend", "torch")
    worker = WorkerProcess(flags, tmp_path / "worker.log", env=child_env(threads=1), cwd=tmp_path).start()
    try:
        worker.wait_ready(120)
        assert 'version="2"' in worker.get("/metrics")[1]
        capsys.readouterr()
        assert run_command("model", "rollback", "--repo", str(repo)) == 0
        assert f"published {repo / '3'}: the files of version 1" in capsys.readouterr().out
        wait_for_metric(worker, 'livetopic_model_reloads_total{result="ok"}', 1, 120, "the rollback is hot-reloaded")
        pushed = livetopic("push", "--redis-url", redis_server.url, "--quiet", "--limit", "20", str(SAMPLE))
        assert pushed.returncode == 0, pushed.stderr
        wait_for(lambda: len(_scores(redis_server.url)) == 20, 60, "the worker classifies", worker.log_path)
        first = [json.loads(line)["text"] for line in texts[:20]]
        expected, replaced = (
            load_model(repo / str(n), dtype="float32", backend="torch").predict_texts(first) for n in (1, 2)
        )
        results = _scores(redis_server.url)
        in_order = [results[k] for k in sorted(results, key=lambda k: tuple(int(x) for x in k.split("-")))]
        assert {model for model, _ in in_order} == {"livetopic:3"}
        got = np.array([list(scores.values()) for _, scores in in_order])
        assert np.abs(got - expected).max() < 1e-4 < 1e-2 < np.abs(got - replaced).max()  # version 1's scores
        assert run_command("model", "list", "--repo", str(repo)) == 0
        listed = capsys.readouterr().out
        assert any(line.split()[:2] == ["3", "served"] and "rollback to 1" in line for line in listed.splitlines()), (
            listed
        )
        with pytest.raises(LivetopicError, match="version 3 is the one workers serve"):
            run_command("model", "remove", "3", "--repo", str(repo))
        assert run_command("model", "remove", "2", "--repo", str(repo)) == 0

        init_version(
            repo / "candidates", preset="tiny", labels=["Cheer", "Game", "Broadcast", "Chat"], texts=texts, seed=2
        )  # what `train` keeps back when its gate says no
        capsys.readouterr()
        assert run_command("model", "promote", "1", "--repo", str(repo)) == 0
        assert f"published {repo / '4'}" in capsys.readouterr().out
        wait_for_metric(
            worker, 'livetopic_model_reloads_total{result="ok"}', 2, 120, "the promoted candidate is hot-reloaded"
        )
        assert 'version="4"' in worker.get("/metrics")[1] and not (repo / "candidates" / "1").exists()
        assert worker.stop() == 0
    finally:
        worker.stop()


def test_add_a_local_directory_and_every_mistake_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The verbs run in this process; each mistake is a LivetopicError, which `livetopic` prints as one line (the
    first one is run as the command line to show it)."""
    from ..hubseeds import SEEDS, write_seed

    seed = next(s for s in SEEDS if s.name == "chinese-star-bert")  # pickled weights only
    published, repo = write_seed(seed, tmp_path / "star"), tmp_path / "models"
    capsys.readouterr()
    assert run_command("model", "add", str(published), "--repo", str(repo), "--name", "stars") == 0
    assert f"published {repo / '1'}" in capsys.readouterr().out
    assert run_command("model", "show", "1", "--repo", str(repo)) == 0
    shown = capsys.readouterr().out
    assert "pytorch_model.bin converted to model.safetensors" in shown
    assert "labels      star 1, star 2, star 3, star 4, star 5" in shown
    assert run_command("model", "show", "1", "--repo", str(repo), "--json") == 0
    assert json.loads(capsys.readouterr().out)["manifest"]["name"] == "stars"
    one_line_error(livetopic("model", "add", str(tmp_path / "nowhere"), "--repo", str(repo)), "not a directory")
    mistakes = [
        (["model", "add", str(tmp_path)], "no config.json"),
        (["model", "show", "7"], "there is no version 7"),
        (["model", "rollback"], "no version before 1 to roll back to"),
        (["model", "promote", "1"], "there is no candidate 1"),
        (["model", "pull", "a/b/c"], "expected a Hub model id"),
        (["model", "add", str(published), "--labels", "a,b"], "--labels names 2 labels, the model has 5 outputs"),
    ]
    for argv, needle in mistakes:
        with pytest.raises(LivetopicError, match=re.escape(needle)):
            run_command(*argv, "--repo", str(repo))
