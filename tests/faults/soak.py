"""Chaos soak: push N comments through two worker processes while workers are killed with SIGKILL,
redis-server (appendonly) is restarted, Redis sits at its memory limit for a while, the output key is
replaced by a string (the workers stop with the reason and are started again), and a broken newest model version is
published (a worker restarted then starts on the version before it), then check the promise: every
comment pushed comes out exactly once, classified or dead-lettered, nothing is left pending, and Redis's memory
never went past its limit by more than the bounds of tests/faults/memory.py.

    python -m tests.faults.soak --n 5000                      # ../shared/data/tvl19_chat
    python -m tests.faults.soak --n 400 --source worker/data/sample_chat.jsonl --kills 3 --restarts 1

Prints a JSON summary on stdout; exits 1 on any loss, duplicate, leftover pending entry or bad exit.
The CI tests in this folder call :func:`every_comment_once` with a few hundred comments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from worker.inputs import read_records
from worker.model.repository import MANIFEST_NAME, publish_version, read_manifest
from worker.model.untrained import init_version
from worker.tools.embedded import EmbeddedRedis
from worker.tools.process import WorkerProcess

from .harness import (
    DEFAULT_SOURCE,
    GROUP,
    INPUT,
    LABELS,
    OUTPUT,
    SAMPLE,
    Proc,
    consumer_pending,
    distinct_done,
    start_push,
    start_worker,
    verify,
    wait_until,
)
from .memory import MemoryPeaks, read_memory


class Soak:
    """One soak run: a server, two workers, a producer, and the chaos events (each a method)."""

    def __init__(self, server: EmbeddedRedis, repo: Path, logs: Path, say: Any) -> None:
        self.server, self.repo, self.logs, self.say = server, repo, logs, say
        self.client = redis.Redis.from_url(server.url, socket_timeout=10)
        self.workers: list[WorkerProcess] = []
        self.retired: dict[str, int] = {}  # worker name → the exit code it was expected to end with (-9: killed)
        self.events: list[dict[str, Any]] = []
        self.t0 = time.monotonic()
        self.memory = MemoryPeaks()
        self._started = 0

    def _new_worker(self, start_id: str = "0") -> WorkerProcess:
        name = f"soak-w{self._started}"
        self._started += 1
        # Slow batches (flushed 400 ms after their first comment) keep comments in flight, so that a kill
        # leaves entries pending for the other worker to reclaim.
        return start_worker(
            self.server.url,
            self.repo,
            self.logs,
            name,
            "--max-wait-ms",
            "400",
            "--max-batch-size",
            "64",
            "--max-inflight",
            "256",
            "--group-start-id",
            start_id,
        )

    def start(self) -> None:
        self.workers = [self._new_worker(), self._new_worker()]
        self.wait_serving()

    def wait_serving(self) -> None:
        for w in self.workers:
            wait_until(lambda w=w: w.ready() or w.popen.poll() is not None, 180, f"{w.name} ready")
            if w.popen.poll() is not None:
                raise RuntimeError(f"{w.name} exited with {w.popen.returncode}:\n{w.log_tail()}")

    def note(self, **event: Any) -> None:
        self.events.append({"t": round(time.monotonic() - self.t0, 1), **event})
        self.say(f"soak: t={self.events[-1]['t']}s {event}")

    def kill(self, victim: int) -> None:
        """kill -9 a worker that serves while the other one serves too; start a replacement."""
        self.wait_serving()
        i = victim % len(self.workers)
        w = self.workers[i]
        held = consumer_pending(self.client, w.name)
        w.popen.send_signal(signal.SIGKILL)
        w.popen.wait()
        self.retired[w.name] = -signal.SIGKILL
        self.workers[i] = self._new_worker()
        self.note(kill=w.name, pending_at_kill=held, replacement=self.workers[i].name)

    def lose_group(self, down_s: float = 3.0) -> None:
        """The workers stopped (SIGTERM) while comments keep coming, the group destroyed, the workers started
        again with --group-start-id $: they resume at the resume mark, and the backlog is served, not skipped."""
        self.wait_serving()
        for w in self.workers:
            w.popen.send_signal(signal.SIGTERM)
        for w in self.workers:
            self.retired[w.name] = w.popen.wait(timeout=60)
        time.sleep(down_s)  # a backlog grows in the stream
        backlog = int(self.client.xlen(INPUT)) - distinct_done(self.client)
        self.client.xgroup_destroy(INPUT, GROUP)
        self.workers = [self._new_worker("$"), self._new_worker("$")]
        self.note(group_destroyed_with_backlog=backlog)

    def restart_redis(self) -> None:
        self.server.restart()
        self.note(redis_restart=True)

    def out_of_memory(self, seconds: float = 4.0) -> None:
        """Redis at its memory limit for a while: writes refused, everything must stay pending and then drain."""
        memory = read_memory(self.client)
        limit_b = int(memory["used_memory"]) + 64 * 1024
        self.client.config_set("maxmemory-policy", "noeviction")
        self.client.config_set("maxmemory", str(limit_b))
        self.memory.set_limit(limit_b, memory)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.memory.sample(read_memory(self.client))
            time.sleep(0.02)
        self.memory.limit_b = 0
        self.client.config_set("maxmemory", "0")
        self.note(out_of_memory_s=seconds)

    def wrong_type(self) -> None:
        """The output key replaced by a string: the workers stop (exit 2) with the reason; the operator puts the
        stream back and the workers are started again (as an orchestrator would)."""
        self.wait_serving()
        had_results = bool(self.client.exists(OUTPUT))
        if had_results:
            self.client.rename(OUTPUT, OUTPUT + ":saved")
        self.client.set(OUTPUT, "not a stream")
        for w in self.workers:
            code = w.popen.wait(timeout=60)
            if code != 2 or "holds a string, not a stream" not in w.log_tail():
                raise RuntimeError(f"{w.name} ended with {code} on a wrong key type:\n{w.log_tail()}")
            self.retired[w.name] = 2
        self.client.delete(OUTPUT)
        if had_results:
            self.client.rename(OUTPUT + ":saved", OUTPUT)
        self.workers = [self._new_worker(), self._new_worker()]
        self.note(wrong_type_exits=[2, 2])

    def broken_version(self) -> None:
        """A newest version that does not load (its weights are not safetensors; published atomically): the
        workers keep serving theirs, and one restarted now (SIGTERM, then a new one, as a rolling update does)
        starts on the version before it and says what it skipped, instead of exiting 2 at every start."""
        self.wait_serving()
        source = self.repo / "1"

        def write(out: Path) -> None:
            for item in source.iterdir():
                if item.is_file() and item.name != MANIFEST_NAME:
                    (out / item.name).write_bytes(item.read_bytes())
            (out / "model.safetensors").write_bytes(b"not a safetensors file")

        number = publish_version(self.repo, write, read_manifest(source))
        old = self.workers[0]
        old.popen.send_signal(signal.SIGTERM)
        self.retired[old.name] = old.popen.wait(timeout=60)
        new = self.workers[0] = self._new_worker()
        self.wait_serving()
        skipped = new.metric('livetopic_model_versions_skipped{reason="failed"}')
        if self.retired[old.name] != 0 or skipped != 1:
            raise RuntimeError(
                f"{old.name} exited {self.retired[old.name]}; {new.name} skipped {skipped} failed "
                f"version(s):\n{new.log_tail()}"
            )
        self.note(broken_version=number, restarted=old.name, replacement=new.name, skipped=int(skipped))

    def finish(self, total: int, timeout_s: float) -> None:
        self.wait_serving()  # a replacement may still be starting (and creating the group); a signal before its
        # handlers are installed would kill it
        wait_until(lambda: distinct_done(self.client) >= total, timeout_s, f"{total} comments finished", 0.5)
        wait_until(lambda: int(self.client.xpending(INPUT, GROUP)["pending"]) == 0, 30, "an empty pending list")

    def stop(self) -> dict[str, int]:
        exits = {}
        for w in self.workers:
            if w.popen.poll() is None:
                w.popen.send_signal(signal.SIGTERM)
        for w in self.workers:
            try:
                exits[w.name] = w.popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                w.popen.kill()
                exits[w.name] = w.popen.wait()
        self.client.close()
        return exits


def _plan(
    push_s: float,
    kills: int,
    restarts: int,
    ooms: int,
    wrong_types: int,
    group_losses: int = 0,
    broken_versions: int = 0,
) -> list[tuple[float, str]]:
    """Chaos events spread evenly over the push, interleaved (a lost group, a broken version and the wrong key
    type early, while comments still come: a backlog must grow while the workers are down, and the wrong key
    type stops the workers only when they publish)."""

    def spread(n: int, what: str, shift: float) -> list[tuple[float, str]]:
        return [(push_s * (k + shift) / (n + 1), what) for k in range(n)]

    return sorted(
        [
            *spread(kills, "kill", 1.0),
            *spread(restarts, "restart", 0.6),
            *spread(ooms, "oom", 0.8),
            *spread(wrong_types, "wrong_type", 0.4),
            *spread(group_losses, "group_lost", 0.2),
            *spread(broken_versions, "broken_version", 0.3),
        ]
    )


def run_soak(
    n: int,
    source: Path,
    workdir: Path,
    *,
    kills: int = 0,
    restarts: int = 0,
    ooms: int = 0,
    wrong_types: int = 0,
    group_losses: int = 0,
    broken_versions: int = 0,
    rate: float | None = None,
    timeout_s: float = 600,
    log: Any = None,
) -> dict[str, Any]:
    """Run the soak in ``workdir`` with the faults counted (none unless given); returns the summary (``ok`` says
    whether the promise held)."""
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    records = read_records([source], limit=n)
    texts = [r.fields["text"] for r in records]
    n = len(records)
    repo = workdir / "repo"
    if not repo.exists():
        init_version(repo, preset="tiny", labels=LABELS, texts=texts, name="soak")
    # About 40 s of pushing, whatever n: room for the events, each waiting for the replacements it started
    # to load (a worker process takes ~10 s to start on a busy 2-core machine).
    rate = rate or max(20.0, n / 40)
    started = time.monotonic()
    server = EmbeddedRedis(workdir / "redis", appendonly=True).start()
    soak = Soak(server, repo, logs, say)
    summary: dict[str, Any] = {
        "n": n,
        "source": str(source),
        "kills": kills,
        "redis_restarts": restarts,
        "out_of_memory_phases": ooms,
        "wrong_type_phases": wrong_types,
        "group_losses": group_losses,
        "broken_version_phases": broken_versions,
        "rate": rate,
    }
    push: Proc | None = None
    try:
        soak.start()
        say(
            f"soak: {n} comments at {rate:.0f}/s, {kills} kill -9, {restarts} redis restart(s), {ooms} OOM "
            f"phase(s), {wrong_types} wrong-type phase(s), {group_losses} group loss(es)"
        )
        push = start_push(server.url, source, n, rate, logs)
        soak.t0 = time.monotonic()
        victim = 0
        for at, what in _plan(n / rate, kills, restarts, ooms, wrong_types, group_losses, broken_versions):
            time.sleep(max(0.0, soak.t0 + at - time.monotonic()))
            if what == "kill":
                soak.kill(victim)
                victim += 1
            else:
                {
                    "restart": soak.restart_redis,
                    "oom": soak.out_of_memory,
                    "wrong_type": soak.wrong_type,
                    "group_lost": soak.lose_group,
                    "broken_version": soak.broken_version,
                }[what]()
        summary["push_exit"] = push.popen.wait(timeout=max(120.0, n / rate * 3))
        if summary["push_exit"] != 0:
            raise RuntimeError(f"push exited with {summary['push_exit']}:\n{push.tail()}")
        soak.finish(int(soak.client.xlen(INPUT)), timeout_s)
        summary.update(verify(soak.client, texts))
    except (TimeoutError, RuntimeError, OSError, subprocess.TimeoutExpired, redis.RedisError) as exc:
        summary["error"] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(redis.RedisError):
            summary.update(verify(soak.client, texts))
    finally:
        summary["worker_exit_codes"] = soak.stop()
        if push is not None and push.popen.poll() is None:
            push.popen.kill()
            push.popen.wait()
        server.stop()
        summary.update(
            events=soak.events,
            retired_workers=soak.retired,
            memory_data_over_maxmemory_b=soak.memory.data_over_b,
            memory_clients_growth_b=soak.memory.clients_growth_b,
            memory_problems=soak.memory.problems(),
            duration_s=round(time.monotonic() - started, 1),
        )
        # Killed workers take their metrics with them; their logs say what they reclaimed.
        summary["reclaimed"] = sum(
            int(m)
            for path in logs.glob("soak-w*.log")
            for m in re.findall(r"reclaimed (\d+) entries", path.read_text(errors="replace"))
        )
    summary["ok"] = "error" not in summary and _promise_held(summary, n)
    return summary


def _promise_held(summary: dict[str, Any], n: int) -> bool:
    return bool(
        summary.get("pushed") == n
        and summary.get("push_exactly_once")
        and summary.get("distinct_source_ids") == n
        and summary.get("duplicates") == 0
        and summary.get("missing") == 0
        and summary.get("unknown_source_ids") == 0
        and summary.get("pending") == 0
        and summary.get("classified", 0) + summary.get("dead_lettered", 0) == n
        and not summary.get("memory_problems")
        and all(code == 0 for code in summary["worker_exit_codes"].values())
    )


def every_comment_once(n: int, workdir: Path, rate: float, **faults: int) -> dict[str, Any]:
    """The soak scaled down for CI (``n`` comments of the bundled sample, the given faults): it held its promise,
    every comment classified once and none dead-lettered; its summary."""
    summary = run_soak(n, SAMPLE, workdir, rate=rate, timeout_s=120, **faults)
    assert summary["ok"], summary
    assert summary["pushed"] == n and summary["classified"] == n and summary["dead_lettered"] == 0, summary
    return summary


# the faults of the command line: run_soak's keyword → (how many by default, what each is)
FAULTS = {
    "kills": (3, "workers killed with SIGKILL during the push"),
    "restarts": (1, "redis-server restarts during the push"),
    "ooms": (1, "phases with Redis at its memory limit (noeviction)"),
    "wrong_types": (1, "phases with the output key replaced by a string (the workers stop; started again)"),
    "group_losses": (1, "phases with the workers stopped and the consumer group destroyed (a backlog waiting)"),
    "broken_versions": (1, "phases with a broken newest model version published (a worker restarted meanwhile)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="comments to push")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="file or folder for livetopic push")
    for fault, (default, what) in FAULTS.items():
        parser.add_argument(f"--{fault.replace('_', '-')}", type=int, default=default, help=what)
    parser.add_argument("--rate", type=float, help="comments per second (default: about 40 s of pushing)")
    parser.add_argument("--workdir", type=Path, help="keep redis data, model and logs here (default: temporary)")
    parser.add_argument("--timeout-s", type=float, default=600, help="give up waiting for results after this")
    args = parser.parse_args(argv)
    if not args.source.exists():
        print(f"soak: {args.source} does not exist", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="livetopic-soak-")))
        faults = {fault: getattr(args, fault) for fault in FAULTS}
        summary = run_soak(args.n, args.source, workdir, rate=args.rate, timeout_s=args.timeout_s, **faults)
        if not summary["ok"]:
            summary["logs"] = str(workdir / "logs") if args.workdir else "(pass --workdir to keep the logs)"
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
