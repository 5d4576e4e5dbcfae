"""Helpers for the fault tests: in-process workers (cheap: no interpreter or torch start-up per worker)
and checks of the promise (each pushed entry finished exactly once) against the real streams."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from worker.model.load import load_model
from worker.model.runtime import LoadedModel
from worker.service.worker import Worker
from worker.settings import load_settings

INPUT, OUTPUT, DEAD, GROUP = "livetopic:comments", "livetopic:topics", "livetopic:dead", "livetopic"


@pytest.fixture(scope="session")
def tiny_model(tiny_repo: Path) -> LoadedModel:
    import torch

    torch.set_num_threads(1)  # the machine is shared: keep in-process inference on one core
    return load_model(tiny_repo, 1)


def make_worker(url: str, repo: Path, model: LoadedModel | None = None, **overrides: Any) -> Worker:
    settings = load_settings({"model_repo": repo, "model_version": 1, "metrics_port": 0, "group_start_id": "0",
                              "max_wait_ms": 5, "claim_interval_s": 0.2, "torch_threads": 1, **overrides})
    return Worker(settings, url, model=model)


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``worker`` in this event loop for the block; then stop it (SIGTERM semantics) and check it ended
    cleanly."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)


async def push(client: aioredis.Redis, entries: Iterable[dict[Any, Any]]) -> list[str]:
    """XADD each field map (str or bytes keys and values) to the input stream; the group exists first."""
    with contextlib.suppress(aioredis.ResponseError):
        await client.xgroup_create(INPUT, GROUP, id="0", mkstream=True)
    return [(await client.xadd(INPUT, fields)).decode() for fields in entries]


def _decode(fields: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in fields.items()}


async def finished(client: aioredis.Redis) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(output entries, dead letters), decoded."""
    out = [_decode(f) for _, f in await client.xrange(OUTPUT)]
    dead = [_decode(f) for _, f in await client.xrange(DEAD)]
    return out, dead


async def wait_finished(client: aioredis.Redis, ids: Iterable[str], *, task: asyncio.Task[Any] | None = None,
                        timeout_s: float = 60) -> None:
    """Until every id in ``ids`` has a result or a dead letter (fails early if ``task`` ends)."""
    wanted = set(ids)
    async with asyncio.timeout(timeout_s):
        while True:
            if task is not None and task.done():
                task.result()
                raise AssertionError("worker stopped early")
            out, dead = await finished(client)
            if wanted <= {e["source_id"] for e in out + dead}:
                return
            await asyncio.sleep(0.05)


async def assert_exactly_once(client: aioredis.Redis, ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each id finished exactly once (result or dead letter), nothing else finished, nothing pending.
    Returns the dead letters by source id."""
    ids = list(ids)
    out, dead = await finished(client)
    counts = collections.Counter(e["source_id"] for e in out + dead)
    assert {i for i, c in counts.items() if c > 1} == set(), "duplicates"
    assert set(counts) == set(ids), f"missing {set(ids) - set(counts)}, unexpected {set(counts) - set(ids)}"
    assert (await client.xpending(INPUT, GROUP))["pending"] == 0
    for letter in dead:
        assert letter["error"] and int(letter["deliveries"]) >= 0
    return {d["source_id"]: d for d in dead}
