"""How many comments a second one Redis carries, and a sharded Redis Cluster: producer → input stream → group →
publish script → output, with the ``null`` backend (no model cost) and several worker processes. Workers start
first (ready), then the comments are pushed (``livetopic push``, one process per file) and the clock runs from
the push until the last result is in. Redis's own cost is read from ``INFO commandstats`` (which command takes
the most server time per comment) and ``INFO cpu`` (server CPU seconds over the run).

    python tests/integration/bench_shards.py single --comments 40000 --workers 2
    python tests/integration/bench_shards.py cluster --comments 40000 --workers 2 --shards 4

Prints a JSON summary (with the CPU model and the load) on stdout. Not a test: measured, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from worker.tools.embedded import EmbeddedRedis
from worker.tools.process import WorkerProcess, child_env

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.rediscluster import RedisCluster, binaries  # noqa: E402


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def write_files(tmp: Path, comments: int, producers: int) -> list[Path]:
    files = []
    for p in range(producers):
        path = tmp / f"p{p}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for i in range(p, comments, producers):
                row = {
                    "text": f"第{i}則 加油 好球",
                    "channel": f"channel-{i % 16}",
                    "user": f"u{i % 97}",
                    "id": f"m{i}",
                }
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        files.append(path)
    return files


def make_repo(tmp: Path) -> Path:
    from worker.model.untrained import init_version

    repo = tmp / "repo"
    repo.mkdir()
    texts = (ROOT / "worker" / "data" / "sample_chat.jsonl").read_text(encoding="utf-8").splitlines()
    init_version(repo, preset="tiny", labels=["Cheer", "Game", "Broadcast", "Chat"], texts=texts, name="tiny")
    return repo


def server_stats(nodes: list[redis.Redis]) -> dict[str, Any]:
    """Summed over the masters: CPU seconds, and per command its calls and total microseconds."""
    cpu, commands = 0.0, {}
    for node in nodes:
        info = node.info("cpu")
        cpu += float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        for name, row in node.info("commandstats").items():
            mine = commands.setdefault(name.removeprefix("cmdstat_"), {"calls": 0, "usec": 0})
            mine["calls"] += int(row["calls"])
            mine["usec"] += int(row["usec"])
    return {"cpu_s": cpu, "commands": commands}


def span(client: Any, streams: list[str]) -> float:
    """Seconds from the first to the last entry of ``streams`` (entry ids are Redis's clock, in ms)."""
    firsts = [client.xrange(s, count=1)[0][0] for s in streams]
    lasts = [client.xrevrange(s, count=1)[0][0] for s in streams]
    ms = [int(x.decode().split("-")[0]) for x in (*firsts, *lasts)]
    return (max(ms) - min(ms)) / 1000


def run(kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    found = binaries()
    assert found is not None, "redis-server and redis-cli on PATH"
    cluster = None
    if kind == "cluster":
        cluster = RedisCluster(tmp / "cluster", *found).start()
        url, masters_ports = cluster.url, {cluster.master_of(f"x{{{k}}}").port for k in range(args.shards)}
        masters = [
            redis.Redis(port=p)
            for p in {n.port for n in cluster.nodes}
            if redis.Redis(port=p).info("replication")["role"] == "master"
        ]
        flags = ["--redis-url", url, "--redis-cluster", "--shards", str(args.shards)]
        flags += ["--wait-replicas", str(args.wait_replicas)]
    else:
        server = EmbeddedRedis(tmp / "redis", appendonly=False, executable=found[0]).start()
        url, masters_ports = server.url, {server.port}
        masters = [redis.Redis(port=server.port)]
        flags = ["--redis-url", url]
    repo = make_repo(tmp)
    files = write_files(tmp, args.comments, args.producers)
    workers = [
        WorkerProcess(
            [
                *flags,
                "--model-repo",
                str(repo),
                "--backend",
                "null",
                "--max-wait-ms",
                "5",
                "--max-batch-size",
                "256",
                "--consumer",
                f"w{i}",
            ],
            tmp / f"w{i}.log",
            threads=1,
        )
        for i in range(args.workers)
    ]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.wait_ready(120)
        for node in masters:
            node.config_resetstat()
        before = server_stats(masters)
        started = time.monotonic()
        pushes = [
            subprocess.Popen(
                [sys.executable, "-m", "worker", "push", str(f), "--quiet", *flags], env=child_env(1), cwd=ROOT
            )
            for f in files
        ]
        for proc in pushes:
            assert proc.wait(600) == 0
        pushed_s = time.monotonic() - started
        client = redis.RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)
        names = [f"livetopic:%s:{{{k}}}" for k in range(args.shards)] if cluster else ["livetopic:%s"]
        outputs = [n % "topics" for n in names]
        while sum(client.xlen(o) for o in outputs) < args.comments:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        after = server_stats(masters)
        spans = {kind: span(client, [n % kind for n in names]) for kind in ("comments", "topics")}
    finally:
        for w in workers:
            w.stop()
        if cluster:
            cluster.stop()
        else:
            server.stop(kill=True)
    per_command = {
        name: {"calls": row["calls"], "usec": row["usec"], "usec_per_comment": round(row["usec"] / args.comments, 2)}
        for name, row in after["commands"].items()
        if row["usec"] > 0
    }
    redis_usec = sum(row["usec"] for row in after["commands"].values())
    return {
        "kind": kind,
        "comments": args.comments,
        "workers": args.workers,
        "producers": args.producers,
        "shards": args.shards if cluster else 1,
        "wait_replicas": args.wait_replicas if cluster else 0,
        "masters": len(masters_ports) if cluster else 1,
        "push_s": round(pushed_s, 2),
        "elapsed_s": round(elapsed, 2),
        "comments_per_s": round(args.comments / elapsed),
        "input_span_s": spans["comments"],
        "input_per_s": round(args.comments / max(spans["comments"], 0.001)),
        "output_span_s": spans["topics"],
        "output_per_s": round(args.comments / max(spans["topics"], 0.001)),
        "redis_cpu_s": round(after["cpu_s"] - before["cpu_s"], 2),
        "redis_cpu_us_per_comment": round((after["cpu_s"] - before["cpu_s"]) * 1e6 / args.comments, 1),
        "redis_command_usec_per_comment": round(redis_usec / args.comments, 2),
        # one core of Redis carries 1 s of CPU a second: at this cost per comment, the projected ceiling
        "projected_ceiling_per_s": round(args.comments / max(after["cpu_s"] - before["cpu_s"], 1e-6)),
        "commands": dict(sorted(per_command.items(), key=lambda kv: -kv[1]["usec"])),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["single", "cluster"])
    parser.add_argument("--comments", type=int, default=40_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--wait-replicas", type=int, default=0, help="cluster: WAIT for this many replicas")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(args.kind, args, Path(tmp)), indent=1))


if __name__ == "__main__":
    main()
