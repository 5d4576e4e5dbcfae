"""The load side of ``livetopic bench``: run the real worker (``python -m worker worker``) against a real
Redis, offer comments (as fast as possible, or paced at a rate) and time each one from its input entry id
to the id of its published result. Both ids are millisecond timestamps from the same host's clock: the
producer picks the input id when it pushes; Redis stamps the output entry when the worker's publish script
XADDs it.

Each run uses fresh stream and group names, so runs against a shared Redis do not interfere; they are
deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import redis.asyncio as aioredis

from ...errors import LivetopicError
from ...settings import StreamNames
from ...streams.client import connect
from ...streams.producer import StreamProducer
from ...streams.reading import delete_streams, lengths, scan
from ...wire import entry_time_ms
from ..process import WorkerProcess

__all__ = ["CpuMeter", "Phase", "delete_run_streams", "fresh_names", "offer", "percentiles"]

_PUSH_CHUNK = 500
_STALL_S = 120.0  # fail a phase when no result arrives for this long


def fresh_names() -> StreamNames:
    """Streams and a group of this run's own."""
    run = uuid.uuid4().hex[:10]
    prefix = f"livetopic-bench:{run}"
    return StreamNames(f"{prefix}:comments", f"{prefix}:topics", f"{prefix}:dead", f"livetopic-bench-{run}")


@dataclass(slots=True)
class Phase:
    """What one load phase measured."""

    offered: int
    seconds: float  # first push (a backlog: the workers resumed) → last result published
    comments_per_s: float
    latencies_ms: np.ndarray
    labels: list[list[str] | None] = field(default_factory=list)  # per offered text; None: not classified
    dead: int = 0
    offered_rate: float | None = None


class CpuMeter:
    """CPU used by *other* processes (cores, on average) between :meth:`start` and :meth:`stop`: the
    machine's busy time (``/proc/stat``) less the bench's own processes. On a shared machine this says how
    much the numbers were disturbed. ``nan`` where ``/proc`` is not available."""

    def __init__(self, pids: Iterable[int] = ()) -> None:
        self.pids: set[int] = {os.getpid(), *pids}
        self._start: tuple[int, int, int] | None = None
        self.other_cores = float("nan")

    @staticmethod
    def _machine() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    def _own(self) -> int:
        total = 0
        for pid in list(self.pids):
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime + stime of all its threads
            except (OSError, IndexError, ValueError):
                continue
        return total

    def _read(self) -> tuple[int, int, int]:
        total, idle = self._machine()
        return total, total - idle, self._own()

    def start(self) -> CpuMeter:
        try:
            self._start = self._read()
        except OSError:
            self._start = None
        return self

    def stop(self) -> float:
        if self._start is None:
            return self.other_cores
        try:
            total, busy, own = self._read()
        except OSError:
            return self.other_cores
        t0, b0, o0 = self._start
        if total > t0:
            cores = os.cpu_count() or 1
            self.other_cores = max(0.0, ((busy - b0) - (own - o0)) / ((total - t0) / cores))
        return self.other_cores


def percentiles(values: np.ndarray, qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    if values.size == 0:
        return {str(q): float("nan") for q in qs}
    return {str(q): float(np.percentile(values, q)) for q in qs}


async def _push(producer: StreamProducer, texts: Sequence[str], rate: float | None) -> list[str]:
    """XADD ``texts``; as fast as possible (chunks of 500) or paced at ``rate`` per second."""
    ids: list[str] = []
    if rate is None:
        for start in range(0, len(texts), _PUSH_CHUNK):
            ids += await producer.add([{"text": t} for t in texts[start : start + _PUSH_CHUNK]])
        return ids
    started = time.monotonic()
    sent = 0
    while sent < len(texts):
        due = min(len(texts), int((time.monotonic() - started) * rate) + 1)
        if due > sent:
            ids += await producer.add([{"text": t} for t in texts[sent:due]])
            sent = due
        await asyncio.sleep(max(0.0, sent / rate - (time.monotonic() - started)))
    return ids


async def offer(
    url: str,
    names: StreamNames,
    texts: Sequence[str],
    workers: Sequence[WorkerProcess],
    *,
    rate: float | None = None,
    backlog: bool = False,
) -> Phase:
    """Offer ``texts`` to the workers (one consumer group) and wait for all of them to be published (results
    or dead letters). ``backlog``: all of them pushed while the workers are paused, then timed from the moment
    they resume, so the producer's work is not counted against the workers' (a backlog, as after a restart)."""
    redis = connect(url)
    try:
        producer = StreamProducer(redis, names.input)
        await producer.ensure_group(names.group)
        before = await _count(redis, names)
        started_ms: float | None = None
        if backlog:
            with contextlib.ExitStack() as stack:
                for worker in workers:
                    stack.enter_context(worker.paused())
                pusher = asyncio.create_task(_push(producer, texts, None))
                await pusher
                server_s, server_us = await redis.time()
                started_ms = server_s * 1000 + server_us / 1000
        else:
            pusher = asyncio.create_task(_push(producer, texts, rate))
        await _until_published(redis, names, before, len(texts), pusher, workers)
        ids = await pusher
        published, dead = await _published(redis, names, set(ids))
    finally:
        await redis.aclose()
    first_in = started_ms if started_ms is not None else min(entry_time_ms(i) for i in ids)
    last_out = max(t for t, _ in published.values())
    seconds = max(1e-3, (last_out - first_in) / 1000)
    latencies = np.array([published[i][0] - entry_time_ms(i) for i in ids if i in published], dtype=np.float64)
    return Phase(
        offered=len(texts),
        seconds=seconds,
        comments_per_s=len(published) / seconds,
        latencies_ms=latencies,
        labels=[published[i][1] if i in published else None for i in ids],
        dead=dead,
        offered_rate=rate,
    )


async def _until_published(
    redis: aioredis.Redis,
    names: StreamNames,
    before: int,
    n: int,
    pusher: asyncio.Task[list[str]],
    workers: Sequence[WorkerProcess],
) -> None:
    """Until the output and dead-letter streams hold ``n`` entries more than ``before``; a dead worker, a failed
    push or no progress for ``_STALL_S`` fails the phase."""
    done, last_progress = before, time.monotonic()
    while done < before + n:
        await asyncio.sleep(0.05)
        for worker in workers:
            worker.check_alive()
        if pusher.done() and pusher.exception() is not None:
            raise pusher.exception()  # type: ignore[misc]
        now = await _count(redis, names)
        if now > done:
            done, last_progress = now, time.monotonic()
        elif time.monotonic() - last_progress > _STALL_S:
            raise LivetopicError(
                f"no result for {_STALL_S:.0f}s ({done - before} of {n} published); "
                "workers' logs:\n" + "\n".join(w.log_tail() for w in workers)
            )


async def _published(
    redis: aioredis.Redis, names: StreamNames, wanted: set[str]
) -> tuple[dict[str, tuple[int, list[str] | None]], int]:
    """(input id → (publish time, labels: None for a dead letter), dead letters) of the ``wanted`` comments."""
    published: dict[str, tuple[int, list[str] | None]] = {}
    dead = 0
    for stream in (names.output, names.dead_letter):
        async for entry_id, fields in scan(redis, stream):
            source = fields.get("source_id", "")
            if source in wanted:
                labels = json.loads(fields["labels"]) if stream == names.output else None
                published[source] = (entry_time_ms(entry_id), labels)
                dead += int(stream == names.dead_letter)
    return published, dead


async def _count(redis: aioredis.Redis, names: StreamNames) -> int:
    return sum(await lengths(redis, names.output, names.dead_letter))


async def delete_run_streams(url: str, names: StreamNames) -> None:
    redis = connect(url)
    try:
        await delete_streams(redis, names.input, names.output, names.dead_letter)
    finally:
        await redis.aclose()
