"""What the fault tests and the soak share: the streams' names, a worker and a producer as processes, and the
promise checked against the streams (:func:`verify`)."""

from __future__ import annotations

import collections
import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from worker.tools.process import WorkerProcess, child_env, one_thread_flags

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "tvl19_chat"
SAMPLE = ROOT / "worker" / "data" / "sample_chat.jsonl"
LABELS = ["Cheer", "Game", "Broadcast", "Chat"]
INPUT, OUTPUT, DEAD, GROUP = "livetopic:comments", "livetopic:topics", "livetopic:dead", "livetopic"


@dataclass
class Proc:
    """The producer subprocess with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def _env() -> dict[str, str]:
    return child_env(threads=1)


def start_worker(url: str, repo: Path, logs: Path, name: str, *extra: str) -> WorkerProcess:
    claims = ("--claim-min-idle-ms", "1000", "--claim-interval-s", "0.5", "--shutdown-grace-s", "20")
    flags = one_thread_flags(url, repo, "--consumer", name, *claims, *extra)
    return WorkerProcess(flags, logs / f"{name}.log", name=name, env=_env(), cwd=ROOT).start()


def start_push(url: str, source: Path, n: int, rate: float, logs: Path) -> Proc:
    cmd = [
        sys.executable,
        "-m",
        "worker",
        "push",
        str(source),
        "--limit",
        str(n),
        "--rate",
        str(rate),
        "--quiet",
        "--redis-url",
        url,
    ]
    log_path = logs / "push.log"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT)
    return Proc("push", popen, log_path)


def wait_until(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def consumer_pending(client: redis.Redis, name: str) -> int:
    with contextlib.suppress(redis.RedisError):
        for row in client.xinfo_consumers(INPUT, GROUP):
            if row["name"].decode() == name:
                return int(row["pending"])
    return 0


def finished_ids(client: redis.Redis) -> tuple[list[str], list[str]]:
    """source_id of every output entry and every dead letter (duplicates kept)."""
    out = [f[b"source_id"].decode() for _, f in client.xrange(OUTPUT)]
    dead = [f[b"source_id"].decode() for _, f in client.xrange(DEAD)]
    return out, dead


def distinct_done(client: redis.Redis) -> int:
    try:
        out, dead = finished_ids(client)
    except redis.RedisError:
        return -1
    return len(set(out) | set(dead))


def verify(client: redis.Redis, expected_texts: list[str]) -> dict[str, Any]:
    """The promise, checked against the streams: pushed once, finished once, nothing pending."""
    inputs = client.xrange(INPUT)
    input_ids = [i.decode() for i, _ in inputs]
    pushed_texts = [f.get(b"text", b"").decode("utf-8", "replace") for _, f in inputs]
    out, dead = finished_ids(client)
    counts = collections.Counter(out + dead)
    reasons = collections.Counter(f[b"error"].decode().split(":")[0] for _, f in client.xrange(DEAD))
    try:
        pending = int(client.xpending(INPUT, GROUP)["pending"])
    except redis.ResponseError:
        pending = -1
    missing = sorted(set(input_ids) - set(counts))
    report = {
        "pushed": len(input_ids),
        "push_exactly_once": collections.Counter(pushed_texts) == collections.Counter(expected_texts),
        "classified": len(out),
        "dead_lettered": len(dead),
        "distinct_source_ids": len(counts),
        "duplicates": sum(c - 1 for c in counts.values()),
        "missing": len(missing),
        "unknown_source_ids": len(set(counts) - set(input_ids)),
        "pending": pending,
        "dead_letter_reasons": dict(reasons),
    }
    if missing:
        report["missing_sample"] = missing[:5]
    return report
