"""Chaos soak: push N comments through two worker processes while workers are killed with SIGKILL and
redis-server (appendonly) is restarted, then check the promise: every comment pushed comes out exactly
once, classified or dead-lettered, and nothing is left pending.

    python tests/faults/soak.py --n 5000                      # ../shared/data/tvl19_chat
    python tests/faults/soak.py --n 400 --source worker/data/sample_chat.jsonl --kills 3 --restarts 1

Prints a JSON summary on stdout; exits 1 on any loss, duplicate, leftover pending entry or bad exit.
The CI tests in this folder call :func:`run_soak` with a few hundred comments.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from worker.inputs import read_records
from worker.model.untrained import init_version
from worker.tools.embedded import EmbeddedRedis
from worker.tools.process import WorkerProcess, child_env

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
    flags = ["--redis-url", url, "--model-repo", str(repo), "--group-start-id", "0", "--torch-threads", "1",
             "--consumer", name, "--claim-min-idle-ms", "1000", "--claim-interval-s", "0.5", "--shutdown-grace-s", "20",
             *extra]
    return WorkerProcess(flags, logs / f"{name}.log", name=name, env=_env(), cwd=ROOT).start()


def start_push(url: str, source: Path, n: int, rate: float, logs: Path) -> Proc:
    cmd = [sys.executable, "-m", "worker", "push", str(source), "--limit", str(n), "--rate", str(rate), "--quiet",
           "--redis-url", url]
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


def _distinct_done(client: redis.Redis) -> int:
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


def run_soak(n: int, source: Path, workdir: Path, *, kills: int = 3, restarts: int = 1, rate: float | None = None,
             timeout_s: float = 600, log: Any = None) -> dict[str, Any]:
    """Run the soak in ``workdir``; returns the summary (``ok`` says whether the promise held)."""
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    workdir.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    records = read_records([source], limit=n)
    texts = [r.fields["text"] for r in records]
    n = len(records)
    repo = workdir / "repo"
    if not repo.exists():
        init_version(repo, preset="tiny", labels=LABELS, texts=texts, name="soak")
    # About 40 s of pushing, whatever n: room for three kills, each waiting for the previous replacement
    # to load (a worker process takes ~10 s to start on a busy 2-core machine).
    rate = rate or max(20.0, n / 40)
    push_s = n / rate
    # Slow batches (flushed 400 ms after their first comment) keep comments in flight, so that a kill
    # leaves entries pending for the other worker to reclaim.
    worker_flags = ("--max-wait-ms", "400", "--max-batch-size", "64", "--max-inflight", "256")
    started = time.monotonic()
    server = EmbeddedRedis(workdir / "redis", appendonly=True).start()
    client = redis.Redis.from_url(server.url, socket_timeout=10)
    workers: list[WorkerProcess] = []
    retired: list[WorkerProcess] = []
    events: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"n": n, "source": str(source), "kills": kills, "redis_restarts": restarts,
                               "rate": rate}
    push: Proc | None = None
    try:
        for i in range(2):
            workers.append(start_worker(server.url, repo, logs, f"soak-w{i}", *worker_flags))
        for w in workers:
            wait_until(lambda w=w: w.ready() or w.popen.poll() is not None, 180, f"{w.name} ready")
            if w.popen.poll() is not None:
                raise RuntimeError(f"{w.name} exited with {w.popen.returncode}:\n{w.log_tail()}")
        say(f"soak: {n} comments at {rate:.0f}/s, {kills} kill -9, {restarts} redis restart(s)")
        push = start_push(server.url, source, n, rate, logs)
        t0 = time.monotonic()
        # Chaos schedule over the push: kills and restarts interleaved, evenly spaced.
        plan = sorted([(push_s * (k + 1) / (kills + 1), "kill") for k in range(kills)]
                      + [(push_s * (r + 0.6) / max(1, restarts), "restart") for r in range(restarts)])
        victim = 0
        for at, what in plan:
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            if what == "kill":
                # Kill a worker that is serving while the other one serves too.
                for other in workers:
                    wait_until(lambda o=other: o.ready() or o.popen.poll() is not None, 180, f"{other.name} ready")
                    if other.popen.poll() is not None:
                        raise RuntimeError(f"{other.name} exited with {other.popen.returncode}:\n{other.log_tail()}")
                w = workers[victim % len(workers)]
                held = consumer_pending(client, w.name)
                w.popen.send_signal(signal.SIGKILL)
                w.popen.wait()
                retired.append(w)
                replacement = start_worker(server.url, repo, logs, f"soak-w{len(workers) + len(retired)}",
                                           *worker_flags)
                workers[victim % len(workers)] = replacement
                events.append({"t": round(time.monotonic() - t0, 1), "kill": w.name, "pending_at_kill": held,
                               "replacement": replacement.name})
                say(f"soak: t={events[-1]['t']}s kill -9 {w.name} holding {held} pending; "
                    f"started {replacement.name}")
                victim += 1
            else:
                server.restart()
                events.append({"t": round(time.monotonic() - t0, 1), "redis_restart": True})
                say(f"soak: t={events[-1]['t']}s restarted redis-server")
        assert push is not None
        push_rc = push.popen.wait(timeout=max(120.0, push_s * 3))
        summary["push_exit"] = push_rc
        if push_rc != 0:
            raise RuntimeError(f"push exited with {push_rc}:\n{push.tail()}")
        total = int(client.xlen(INPUT))
        wait_until(lambda: _distinct_done(client) >= total, timeout_s, f"{total} comments finished", 0.5)
        wait_until(lambda: int(client.xpending(INPUT, GROUP)["pending"]) == 0, 30, "an empty pending list")
        for w in workers:  # a replacement may still be starting; a signal before its handlers would kill it
            wait_until(lambda w=w: w.ready() or w.popen.poll() is not None, 180, f"{w.name} ready")
        summary["duplicates_suppressed_by_survivors"] = sum(
            w.metric("livetopic_duplicates_suppressed_total") for w in workers)
        summary.update(verify(client, texts))
    except (TimeoutError, RuntimeError, OSError, subprocess.TimeoutExpired, redis.RedisError) as exc:
        summary["error"] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(redis.RedisError):
            summary.update(verify(client, texts))
    finally:
        exits = {}
        for w in workers:
            if w.popen.poll() is None:
                w.popen.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                exits[w.name] = w.popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                w.popen.kill()
                exits[w.name] = w.popen.wait()
        if push is not None and push.popen.poll() is None:
            push.popen.kill()
            push.popen.wait()
        client.close()
        server.stop()
        summary["events"] = events
        # Killed workers take their metrics with them; their logs say what they reclaimed.
        summary["reclaimed"] = sum(int(m) for path in logs.glob("soak-w*.log")
                                   for m in re.findall(r"reclaimed (\d+) entries", path.read_text(errors="replace")))
        summary["worker_exit_codes"] = exits
        summary["duration_s"] = round(time.monotonic() - started, 1)
    summary["ok"] = "error" not in summary and _promise_held(summary, n)
    return summary


def _promise_held(summary: dict[str, Any], n: int) -> bool:
    return bool(
        summary.get("pushed") == n and summary.get("push_exactly_once")
        and summary.get("distinct_source_ids") == n and summary.get("duplicates") == 0
        and summary.get("missing") == 0 and summary.get("unknown_source_ids") == 0
        and summary.get("pending") == 0
        and summary.get("classified", 0) + summary.get("dead_lettered", 0) == n
        and all(code == 0 for code in summary["worker_exit_codes"].values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="comments to push")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="file or folder for livetopic push")
    parser.add_argument("--kills", type=int, default=3, help="workers killed with SIGKILL during the push")
    parser.add_argument("--restarts", type=int, default=1, help="redis-server restarts during the push")
    parser.add_argument("--rate", type=float, help="comments per second (default: about 40 s of pushing)")
    parser.add_argument("--workdir", type=Path, help="keep redis data, model and logs here (default: temporary)")
    parser.add_argument("--timeout-s", type=float, default=600, help="give up waiting for results after this")
    args = parser.parse_args(argv)
    if not args.source.exists():
        print(f"soak: {args.source} does not exist", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="livetopic-soak-")))
        summary = run_soak(args.n, args.source, workdir, kills=args.kills, restarts=args.restarts, rate=args.rate,
                           timeout_s=args.timeout_s)
        if not summary["ok"]:
            summary["logs"] = str(workdir / "logs") if args.workdir else "(pass --workdir to keep the logs)"
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
