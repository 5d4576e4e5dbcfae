"""Graceful shutdown of worker processes: SIGTERM drains what is in flight and exits 0; a second signal
exits at once, and what that worker left unacked is reclaimed by another."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from worker.inputs import read_records
from worker.model.runtime import LoadedModel
from worker.tools.embedded import EmbeddedRedis

from ..conftest import SAMPLE
from ..inprocess import make_worker
from .conftest import assert_exactly_once, push, running, wait_finished
from .harness import GROUP, INPUT, OUTPUT, consumer_pending, verify, wait_until

# Each worker reads a window of 200 comments and holds them in one batch for up to 60 s: at the signal,
# they are all in flight.
HOLD = (
    "--max-inflight",
    "200",
    "--max-batch-size",
    "512",
    "--max-batch-tokens",
    "100000",
    "--max-wait-ms",
    "60000",
    "--read-count",
    "200",
)


@pytest.fixture
def client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.url)
    c.flushall()
    c.xgroup_create(INPUT, GROUP, id="0", mkstream=True)
    yield c
    c.close()


def push_sample(client: redis.Redis, n: int) -> list[str]:
    texts = [r.fields["text"] for r in read_records([SAMPLE])]
    pipe = client.pipeline()
    for i in range(n):
        pipe.xadd(INPUT, {"text": texts[i % len(texts)], "user": f"u{i}"})
    return [i.decode() for i in pipe.execute()]


def test_sigterm_publishes_in_flight_and_exits_0(
    redis_server: EmbeddedRedis, client: redis.Redis, tiny_repo: Path, start_worker: Callable[..., Any]
) -> None:
    push_sample(client, 600)
    worker = start_worker(redis_server.url, tiny_repo, "--consumer", "draining", "--shutdown-grace-s", "10", *HOLD)
    wait_until(lambda: consumer_pending(client, "draining") == 200, 30, "a full in-flight window")
    time.sleep(0.5)
    assert consumer_pending(client, "draining") == 200  # --max-inflight bounds what it reads
    assert client.xlen(OUTPUT) == 0  # all 200 are in flight, none published yet
    started = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    code = worker.proc.wait(timeout=15)
    elapsed = time.monotonic() - started
    assert code == 0, worker.log()
    assert elapsed < 10, f"took {elapsed:.1f}s, grace is 10s"
    assert consumer_pending(client, "draining") == 0 and client.xlen(OUTPUT) == 200
    assert client.xpending(INPUT, GROUP)["pending"] == 0
    assert "draining 200 in-flight comments" in worker.log()


def test_one_sigterm_delivered_twice_is_one_stop(
    redis_server: EmbeddedRedis, client: redis.Redis, tiny_repo: Path, start_worker: Callable[..., Any]
) -> None:
    """A supervisor signalling the whole process group delivers SIGTERM twice: still a graceful stop."""
    push_sample(client, 300)
    worker = start_worker(redis_server.url, tiny_repo, "--consumer", "twice", *HOLD)
    wait_until(lambda: consumer_pending(client, "twice") == 200, 30, "a full in-flight window")
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)  # hold the drain (it cannot publish) while we signal
    try:
        worker.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping (drain" in worker.log(), 10, "the first SIGTERM handled")
        worker.proc.send_signal(signal.SIGTERM)  # a separate delivery (the kernel would merge two pending ones)
        wait_until(lambda: "taken as the same request to stop" in worker.log(), 10, "the repeat ignored")
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    assert worker.proc.wait(timeout=30) == 0, worker.log()
    assert client.xlen(OUTPUT) == 200 and consumer_pending(client, "twice") == 0


def test_second_signal_exits_at_once_and_others_reclaim(
    redis_server: EmbeddedRedis, client: redis.Redis, tiny_repo: Path, start_worker: Callable[..., Any]
) -> None:
    ids = push_sample(client, 500)
    texts = [f[b"text"].decode() for _, f in client.xrange(INPUT)]
    impatient = start_worker(redis_server.url, tiny_repo, "--consumer", "impatient", "--shutdown-grace-s", "60", *HOLD)
    wait_until(lambda: consumer_pending(client, "impatient") == 200, 30, "a full in-flight window")
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)  # the drain cannot publish: it is still going on…
    try:
        impatient.proc.send_signal(signal.SIGTERM)
        time.sleep(2.5)  # past the window in which a repeated signal counts as the same one
        impatient.proc.send_signal(signal.SIGINT)  # the second signal: exit now, drain or not
        assert impatient.proc.wait(timeout=10) == 130, impatient.log()
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    held = consumer_pending(client, "impatient")
    assert held == 200 and client.xlen(OUTPUT) == 0
    rescuer = start_worker(
        redis_server.url, tiny_repo, "--consumer", "rescuer", "--claim-min-idle-ms", "1000", "--claim-interval-s", "0.5"
    )
    wait_until(lambda: verify(client, texts)["distinct_source_ids"] == len(ids), 60, "all comments finished")
    report = verify(client, texts)
    assert report["duplicates"] == 0 and report["missing"] == 0 and report["pending"] == 0, report
    assert rescuer.metric("livetopic_reclaimed_total") == held
    assert rescuer.stop() == 0


async def test_grace_period_over_leaves_the_rest_to_others(
    redis_server: EmbeddedRedis,
    redis_client: aioredis.Redis,
    tiny_repo: Path,
    tiny_model: LoadedModel,
    stuck_model: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch stuck in the model past --shutdown-grace-s: the worker still stops in time, leaving those
    comments unacked, and another worker reclaims and publishes them once."""
    release = stuck_model
    ids = await push(redis_client, [{"text": f"卡住的留言 {i}"} for i in range(20)])
    # max_inflight 20: the reader is waiting for room when the stop comes, and must not wait forever
    worker = make_worker(
        redis_server.url, tiny_repo, tiny_model, consumer="stuck", shutdown_grace_s=0.5, max_inflight=20
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(30):
        while len(worker.flow) < 20:
            await asyncio.sleep(0.05)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert time.monotonic() - started < 3
    release.set()
    monkeypatch.undo()
    assert (await redis_client.xpending(INPUT, GROUP))["pending"] == 20 and await redis_client.xlen(OUTPUT) == 0
    rescuer = make_worker(redis_server.url, tiny_repo, tiny_model, consumer="rescuer", claim_min_idle_ms=200)
    async with running(rescuer) as rescuing:
        await wait_finished(redis_client, ids, task=rescuing)
    await assert_exactly_once(redis_client, ids)
