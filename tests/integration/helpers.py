"""Helpers for integration tests: run a worker in-process until the output holds N results; the output stream's
results and retractions."""

from __future__ import annotations

import asyncio
import json

import redis
import redis.asyncio as aioredis

from worker.service.worker import Worker
from worker.wire import is_retraction


async def entries(client: aioredis.Redis, stream: str) -> list[dict[str, str]]:
    rows = await client.xrange(stream)
    return [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in rows]


async def run_until(worker: Worker, client: aioredis.Redis, n: int, timeout_s: float = 60) -> None:
    """Run ``worker`` until output + dead letters hold ``n`` entries, then stop it cleanly."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                if task.done():
                    task.result()
                    raise AssertionError("worker stopped early")
                done = await client.xlen(worker.settings.output_stream) + await client.xlen(
                    worker.settings.dead_letter_stream
                )
                if done >= n:
                    break
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


def scores_of(entry: dict[str, str]) -> dict[str, float]:
    return json.loads(entry["scores"])


def split_output(
    client: redis.Redis, stream: str = "livetopic:topics"
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(results, retractions) of the output ``stream`` (``client`` with text replies)."""
    entries = [fields for _id, fields in client.xrange(stream)]
    return [f for f in entries if not is_retraction(f)], [f for f in entries if is_retraction(f)]
