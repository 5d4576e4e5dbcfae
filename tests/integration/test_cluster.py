"""Sharded streams on a real Redis Cluster (3 masters, 3 replicas on loopback): 4 shards, 2 worker processes,
3 producer processes over 8 channels, every comment classified exactly once and each channel on one shard; then
a master killed -9 mid-stream, its replica promoted, and the comments lost and duplicated counted, without and
with ``--wait-replicas 1`` (docs/RECOVERY.md says what each setting promises)."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from worker.settings import StreamNames
from worker.streams.shards import ShardLayout

from ..conftest import ROOT, WorkerProcess, worker_env
from ..rediscluster import RedisCluster, binaries, until

pytestmark = pytest.mark.slow

SHARDS = 4
CHANNELS = [f"channel-{i}" for i in range(8)]
LAYOUT = ShardLayout(
    StreamNames("livetopic:comments", "livetopic:topics", "livetopic:dead", "livetopic"), SHARDS, tagged=True
)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    found = binaries()
    if found is None:
        pytest.skip("redis-server and redis-cli are not on PATH (apt-get install redis-server)")
    made = RedisCluster(tmp_path / "cluster", *found)
    try:
        yield made.start()
    finally:
        made.stop()


def write_comments(path: Path, producer: int, count: int) -> list[str]:
    """``count`` comments of producer ``producer`` spread over the 8 channels; their message ids."""
    ids = [f"p{producer}-{i}" for i in range(count)]
    with path.open("w", encoding="utf-8") as out:
        for i, message_id in enumerate(ids):
            channel = CHANNELS[(i * 3 + producer) % 8]
            row = {"text": f"第{i}則 加油 {producer}", "channel": channel, "user": f"u{i % 50}", "id": message_id}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return ids


def flags(cluster: RedisCluster, *extra: str) -> list[str]:
    return ["--redis-url", cluster.url, "--redis-cluster", "--shards", str(SHARDS), *extra]


def start_workers(cluster: RedisCluster, repo: Path, tmp: Path, n: int, *extra: str) -> list[WorkerProcess]:
    workers = [
        WorkerProcess(
            cluster.url,
            repo,
            tmp / f"worker-{i}.log",
            "--redis-cluster",
            "--shards",
            str(SHARDS),
            "--backend",
            "null",
            "--max-wait-ms",
            "5",
            "--claim-min-idle-ms",
            "2000",
            "--claim-interval-s",
            "0.5",
            *extra,
        )
        for i in range(n)
    ]
    for worker in workers:
        worker.wait_ready()
    return workers


def push(cluster: RedisCluster, path: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "push", str(path), "--quiet", *flags(cluster, *extra)],
        cwd=ROOT,
        env=worker_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stopped(workers: list[WorkerProcess]) -> None:
    codes = [worker.stop() for worker in workers]  # all of them, then the verdict
    for worker, code in zip(workers, codes, strict=True):
        assert code == 0, worker.log()


def finished(producers: list[subprocess.Popen[bytes]]) -> None:
    for proc in producers:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()


def results(client: redis.RedisCluster) -> dict[int, list[dict[bytes, bytes]]]:
    """Every result of every shard's output stream."""
    out: dict[int, list[dict[bytes, bytes]]] = {}
    for k in range(SHARDS):
        rows: list[dict[bytes, bytes]] = []
        start = "-"
        while page := cast(Any, client.xrange(LAYOUT.name("livetopic:topics", k), start, "+", count=5000)):
            rows += [fields for _, fields in page]
            start = "(" + page[-1][0].decode()
        out[k] = rows
    return out


def output_length(client: redis.RedisCluster) -> int:
    return sum(client.xlen(name) for name in LAYOUT.all("livetopic:topics"))


def tally(found: dict[int, list[dict[bytes, bytes]]], expected: list[str]) -> tuple[int, int]:
    """(comments lost, comments published more than once) of ``expected`` in ``found``."""
    counts = collections.Counter(row[b"id"].decode() for rows in found.values() for row in rows)
    lost = sum(1 for message_id in expected if counts[message_id] == 0)
    return lost, sum(n - 1 for n in counts.values() if n > 1)


def test_four_shards_two_workers_three_producers_exactly_once(
    cluster: RedisCluster, tiny_repo: Path, tmp_path: Path
) -> None:
    files = [tmp_path / f"producer-{p}.jsonl" for p in range(3)]
    expected = [i for p, path in enumerate(files) for i in write_comments(path, p, 6667 if p < 2 else 6666)]
    assert len(expected) == 20_000
    workers = start_workers(cluster, tiny_repo, tmp_path, 2)
    finished([push(cluster, path) for path in files])
    client = redis.RedisCluster.from_url(cluster.url)
    until(lambda: output_length(client) >= len(expected), 120, "20,000 results")
    stopped(workers)
    found = results(client)
    assert tally(found, expected) == (0, 0)
    assert sum(client.xlen(name) for name in LAYOUT.all("livetopic:dead")) == 0
    for k, rows in found.items():  # per shard: one result per input entry, the channel's own shard
        inputs = client.xlen(LAYOUT.name("livetopic:comments", k))
        assert len({row[b"source_id"] for row in rows}) == len(rows) == inputs
    shards_of = collections.defaultdict(set)
    for k, rows in found.items():
        for row in rows:
            shards_of[row[b"channel"].decode()].add(k)
    assert {c: sorted(s) for c, s in shards_of.items()} == {c: [LAYOUT.shard_of({"channel": c})] for c in CHANNELS}
    assert len({LAYOUT.shard_of({"channel": c}) for c in CHANNELS}) > 1  # the load is spread
    client.close()
    observers_read_every_shard(cluster, expected)


def cli(cluster: RedisCluster, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "worker", *args, *flags(cluster)],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def observers_read_every_shard(cluster: RedisCluster, expected: list[str]) -> None:
    """tail and scale-sim on the cluster: every shard's results, the lag summed over the shards."""
    tailed = [json.loads(line) for line in cli(cluster, "tail", "--from-start", "--no-follow", "--json").splitlines()]
    assert sorted(row["id"] for row in tailed) == sorted(expected)
    sample = json.loads(cli(cluster, "scale-sim", "--count", "1", "--json").splitlines()[-1])
    assert sample["lag"] == 0 and sample["pending"] == 0


@pytest.mark.parametrize("wait_replicas", [0, 1])
def test_master_killed_mid_stream(cluster: RedisCluster, tiny_repo: Path, tmp_path: Path, wait_replicas: int) -> None:
    """kill -9 the master of shard 0 while producers push and workers publish; the replica is promoted. Lost and
    duplicated comments are counted and reported; with --wait-replicas 1 none may be lost; duplicates never (the
    commit point's ledger travels with the results it guards)."""
    wait = ("--wait-replicas", str(wait_replicas))
    files = [tmp_path / f"producer-{p}.jsonl" for p in range(3)]
    expected = [i for p, path in enumerate(files) for i in write_comments(path, p, 2000)]
    workers = start_workers(cluster, tiny_repo, tmp_path, 2, *wait)
    client = redis.RedisCluster.from_url(cluster.url)
    started = time.monotonic()
    producers = [push(cluster, path, "--rate", "800", *wait) for path in files]
    until(lambda: output_length(client) >= 1500, 60, "a quarter of the results")
    victim = cluster.kill_master_of(LAYOUT.name("livetopic:comments", 0))
    finished(producers)
    client.close()
    client = redis.RedisCluster.from_url(cluster.url)
    settled: list[int] = []

    def quiet() -> bool:  # everything in, or nothing more for 3 s after the producers ended (what was lost)
        settled.append(output_length(client))
        return settled[-1] >= len(expected) or (len(settled) > 30 and settled[-1] == settled[-31])

    until(quiet, 90, "the results to settle", every_s=0.1)
    elapsed = time.monotonic() - started
    stopped(workers)
    lost, duplicated = tally(results(client), expected)
    client.close()
    print(
        f"\nfailover (master on port {victim.port} killed -9, replica promoted), --wait-replicas {wait_replicas}: "
        f"{len(expected)} comments, {lost} lost, {duplicated} duplicated, {elapsed:.1f}s"
    )
    assert duplicated == 0
    if wait_replicas:
        assert lost == 0
    else:
        assert lost <= len(expected) // 10  # asynchronous replication: what the master had not sent on
