"""Redis faults: a restart (appendonly) mid-stream, dropped connections and timeouts. Workers back off and
reconnect (/readyz 503 meanwhile), `livetopic push` rides the restart out, and nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from worker.inputs import read_records
from worker.model.runtime import LoadedModel
from worker.tools.embedded import EmbeddedRedis

from ..conftest import ROOT, SAMPLE, worker_env
from ..inprocess import make_worker, sample
from .conftest import assert_exactly_once, push, running, wait_finished
from .harness import DEAD, OUTPUT, verify, wait_until


def test_redis_restart_mid_stream_loses_nothing(
    redis_server: EmbeddedRedis, tiny_repo: Path, start_worker: Callable[..., Any], tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    client.flushall()
    worker = start_worker(
        redis_server.url, tiny_repo, "--claim-min-idle-ms", "1000", "--claim-interval-s", "0.5", "--max-wait-ms", "100"
    )
    texts = [r.fields["text"] for r in read_records([SAMPLE])]
    with open(tmp_path / "push.log", "wb") as log:
        pusher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker",
                "push",
                str(SAMPLE),
                "--rate",
                "80",
                "--quiet",
                "--redis-url",
                redis_server.url,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=worker_env(),
            cwd=ROOT,
        )
    try:
        wait_until(lambda: client.xlen(OUTPUT) >= 60, 30, "results flowing")
        client.close()
        before = redis.Redis.from_url(redis_server.url).xlen(OUTPUT)
        redis_server.stop()  # clean shutdown: the append-only file has every acknowledged write
        wait_until(lambda: worker.get("/readyz")[0] == 503, 15, "/readyz 503 while redis is down")
        assert "redis unreachable" in worker.get("/readyz")[1] and worker.get("/healthz")[0] == 200
        time.sleep(1.0)  # the producer is retrying meanwhile
        redis_server.start()  # same port, same data directory
        assert pusher.wait(timeout=60) == 0, (tmp_path / "push.log").read_text()
    finally:
        if pusher.poll() is None:
            pusher.kill()
            pusher.wait()
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    assert client.xlen(OUTPUT) >= before  # nothing acknowledged before the restart was lost
    wait_until(lambda: verify(client, texts)["distinct_source_ids"] == len(texts), 60, "all comments finished")
    report = verify(client, texts)
    assert report["pushed"] == len(texts) and report["push_exactly_once"], report
    assert report["duplicates"] == 0 and report["missing"] == 0 and report["pending"] == 0, report
    assert report["classified"] == len(texts)
    wait_until(lambda: worker.get("/readyz")[0] == 200, 15, "/readyz 200 again")
    assert worker.metric("livetopic_redis_errors_total") > 0
    assert worker.proc.poll() is None and worker.stop() == 0
    assert "push: redis unavailable" in (tmp_path / "push.log").read_text()


async def test_dropped_connections_and_timeouts_lose_nothing(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel
) -> None:
    """CLIENT KILL drops the worker's connections (a reply can be lost after the publish script ran: the
    retry publishes nothing twice); CLIENT PAUSE makes its commands time out."""
    # a paused Redis times commands out after 0.3 s; what a dropped connection left pending is claimed after 0.5 s
    quick = {"redis_timeout_s": 0.3, "block_ms": 50, "claim_min_idle_ms": 500}
    worker = make_worker(
        redis_server.url, tiny_repo, tiny_model, **quick, max_batch_size=4, read_count=16, max_inflight=64
    )
    chaos = aioredis.Redis.from_url(redis_server.url)
    spared = {await chaos.client_id(), await redis_client.client_id()}
    ids = await push(redis_client, [{"text": f"留言 {i} 號"} for i in range(600)])
    try:
        async with running(worker) as task:
            for round_ in range(400):
                out, dead = await redis_client.xlen(OUTPUT), await redis_client.xlen(DEAD)
                if out + dead >= len(ids):
                    break
                if round_ % 25 == 24:
                    await chaos.execute_command("CLIENT", "PAUSE", 500)
                    await asyncio.sleep(0.6)
                else:
                    for c in await chaos.client_list():
                        if int(c["id"]) not in spared:
                            await chaos.client_kill_filter(_id=c["id"])
                    await asyncio.sleep(0.02)
            await wait_finished(redis_client, ids, task=task, timeout_s=90)
            # the last kill may have caught a call in flight: readiness comes back with the next success
            async with asyncio.timeout(10):
                while worker.health.readiness() != (True, "ok"):
                    await asyncio.sleep(0.05)
    finally:
        await chaos.aclose()
    await assert_exactly_once(redis_client, ids)
    assert sample(worker, "livetopic_redis_errors_total") > 0
