"""Long commands as people run them: a push of files interrupted (Ctrl-C, SIGTERM) says what it sent and exits 130
(143); run again, it says it resumes and sends the rest, every comment exactly once. An interrupted train says
nothing was published. No progress bar is written where stderr is not a terminal (a log), unless --progress."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from worker.tools.embedded import EmbeddedRedis
from worker.tools.process import child_env

from ..conftest import ROOT, SAMPLE
from .helpers import livetopic, wait_for

COMMENTS = 403  # the bundled sample


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_push_says_what_it_kept_and_resumes(
    redis_server: EmbeddedRedis, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    push = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker",
            "push",
            "--redis-url",
            redis_server.url,
            "--quiet",
            "--rate",
            "40",
            str(SAMPLE),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=child_env(threads=1),
    )
    try:
        wait_for(lambda: client.xlen("livetopic:comments") > 0, 60, "the push starts")
        push.send_signal(sig)
        _, stderr = push.communicate(timeout=60)
    finally:
        push.kill()
        push.wait()
    sent = client.xlen("livetopic:comments")
    assert 0 < sent < COMMENTS and push.returncode == code, stderr
    assert stderr.splitlines() == [
        f"livetopic: interrupted: pushed {sent} of {COMMENTS} comments; run again to send the rest"
    ], stderr

    again = livetopic("push", "--redis-url", redis_server.url, "--quiet", str(SAMPLE))
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines()[0] == (
        f"resuming: an earlier push of these files stopped after {sent} of {COMMENTS} comments; pushing the "
        f"other {COMMENTS - sent} (--restart pushes them all again)"
    ), again.stderr
    assert client.xlen("livetopic:comments") == COMMENTS
    client.close()


def test_interrupted_train_says_nothing_was_published(tmp_path: Path) -> None:
    run, out = tmp_path / "run", tmp_path / "models"
    train = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker",
            "train",
            "--data",
            str(SAMPLE),
            "--out",
            str(out),
            "--preset",
            "tiny",
            "--max-minutes",
            "2",
            "--run-dir",
            str(run),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=child_env(threads=1, extra={"LIVETOPIC_LOG_LEVEL": "WARNING"}),
    )
    try:
        wait_for(lambda: (run / "metrics.jsonl").exists(), 120, "the run starts")
        train.send_signal(signal.SIGTERM)
        _, stderr = train.communicate(timeout=60)
    finally:
        train.kill()
        train.wait()
    assert train.returncode == 143, stderr
    assert stderr.splitlines()[-1] == (
        f"livetopic: interrupted: training stopped, nothing was published to {out}; the run's log so far is in "
        f"{run}; run train again to train anew"
    ), stderr
    assert not out.exists() or not any(out.iterdir())


def test_no_progress_bar_in_a_log_unless_asked(redis_server: EmbeddedRedis) -> None:
    args = ["push", "--redis-url", redis_server.url, "--limit", "5", "--restart", str(SAMPLE)]
    plain = livetopic(*args)  # stderr is a pipe here, as it is a log file under a supervisor
    assert plain.returncode == 0 and "it/s" not in plain.stderr and "comment/s" not in plain.stderr, plain.stderr
    asked = livetopic(*args, "--progress")
    assert asked.returncode == 0 and "5/5" in asked.stderr, asked.stderr
