"""Autoscaling on the lag, simulated on a live backlog: a burst of real comments waits in a Redis 7 stream, the
real XINFO GROUPS lag goes through KEDA's formula (ceil(lag / lagCount), bounded) and the HPA behavior of
deploy/overlays/keda/keda-scaledobject.yaml; the replicas rise under the burst, a real worker drains it, and
they fall."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from worker.streams.client import connect
from worker.streams.group import ensure_group
from worker.streams.info import stream_stats
from worker.tools.embedded import EmbeddedRedis
from worker.tools.scalesim import Sample, ScaleRule, poll

from ..cli.helpers import livetopic
from ..conftest import ROOT, SAMPLE

pytestmark = pytest.mark.slow

STREAM, GROUP, BURST = "livetopic:comments", "livetopic", 2400
SCALEDOBJECT = ROOT / "deploy" / "overlays" / "keda" / "keda-scaledobject.yaml"


async def wait_until(samples: list[Sample], what: str, check: Any, timeout_s: float = 120) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not (samples and check(samples[-1])):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}; last samples: {samples[-5:]}") from None


async def test_replicas_rise_under_a_burst_and_fall_after(
    redis7_server: EmbeddedRedis, tiny_repo: Path, start_worker: Any
) -> None:
    deployed = ScaleRule.from_scaledobject(SCALEDOBJECT)
    # The deployed behavior and bounds, with a lagCount for this burst size: ceil(2400 / 300) = 8 replicas.
    rule = ScaleRule(300, 30, deployed.min_replicas, 10, deployed.behavior)
    texts = [json.loads(line)["text"] for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    redis = connect(redis7_server.url)
    samples: list[Sample] = []
    stop = asyncio.Event()
    try:
        await ensure_group(redis, STREAM, GROUP, "$")
        fetch = functools.partial(stream_stats, redis, STREAM, GROUP)
        # 120 simulated seconds per real one: the 30 s scale-up periods and the 300 s scale-down window pass fast.
        task = asyncio.create_task(poll(fetch, rule, interval_s=0.05, speed=120, on_sample=samples.append, stop=stop))
        await wait_until(samples, "the idle stream sampled", lambda s: s.lag == 0)
        assert samples[-1].replicas == rule.min_replicas
        pipe = redis.pipeline(transaction=False)
        for i in range(BURST):
            pipe.xadd(STREAM, {"text": texts[i % len(texts)], "channel": "burst"})
        await pipe.execute()
        await wait_until(samples, "the replicas to reach the burst's", lambda s: s.replicas == 8, timeout_s=30)
        worker = await asyncio.to_thread(start_worker, redis7_server.url, tiny_repo)  # drains the backlog
        await wait_until(samples, "the backlog drained", lambda s: s.lag == 0)
        await wait_until(samples, "the replicas back at the floor", lambda s: s.replicas == rule.min_replicas)
        stop.set()
        await asyncio.wait_for(task, 10)
        assert await redis.xlen("livetopic:topics") == BURST
        await asyncio.to_thread(worker.stop)
    finally:
        stop.set()
        await redis.aclose()

    lags = [s.lag for s in samples]
    assert BURST in lags  # the real XINFO GROUPS lag of the whole burst, before the worker started
    peak = lags.index(BURST)
    assert {s.wanted for s in samples[peak:] if s.lag == BURST} == {8}  # ceil(2400 / 300)
    replicas = [s.replicas for s in samples]
    top = replicas.index(8)
    rising, falling = replicas[: top + 1], replicas[top:]
    assert rising == sorted(rising) and len(set(rising)) >= 3  # 2 → 6 → 8: stepwise, as the policies allow
    assert falling == sorted(falling, reverse=True) and falling[-1] == rule.min_replicas
    steps_down = {a - b for a, b in itertools.pairwise(falling) if a != b}
    assert steps_down == {1}  # one pod at a time, after the window


def test_scale_sim_command(redis7_server: EmbeddedRedis) -> None:
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis7_server.url)
    try:
        client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
        for i in range(2500):
            client.xadd(STREAM, {"text": f"comment {i}"})
    finally:
        client.close()
    flags = ["--redis-url", redis7_server.url, "--scaledobject", str(SCALEDOBJECT), "--count", "2", "--interval", "0.1"]
    proc = livetopic("scale-sim", *flags, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["lag"], r["pending"], r["wanted"]) for r in rows] == [(2500, 0, 3), (2500, 0, 3)]  # ceil(2500/1000)
    assert rows[0]["replicas"] == 3  # +4 pods allowed at once: from the floor of 2 straight to 3
