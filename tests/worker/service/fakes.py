"""Stand-ins for the stages' neighbours, in memory and without timers: a stream source (what a reader reads), a
model (what admit encodes with and the score stage runs), a publish target (what the publisher calls) and a
clock (what the batcher waits on). The real Redis and the real model are covered by tests/worker/streams,
tests/worker/model, tests/faults and tests/integration; these let each stage be tested alone, driven by events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np

from worker.errors import ModelOutOfMemoryError
from worker.model.chunks import Prepared, pad_chunks
from worker.model.runtime import Head, Stage
from worker.service.metrics import Metrics
from worker.settings import Settings, load_settings
from worker.streams.client import Outgoing, Published, RawEntry
from worker.streams.retry import Retrying


class FakeClock:
    """A batcher's ``clock()`` and ``sleep()``: time moves only when a test calls :meth:`advance`."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay_s: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + delay_s, future))
        await future

    def advance(self, delta_s: float) -> None:
        self.now += delta_s
        for due, future in self.sleepers:
            if due <= self.now and not future.done():
                future.set_result(None)


async def settle() -> None:
    """Let every task that can run, run (no time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


def entry(n: int, text: str | None = None) -> RawEntry:
    return f"{n}-0", {b"text": (text if text is not None else f"comment {n}").encode()}


def settings(**overrides: object) -> Settings:
    return load_settings({"metrics_port": 0, "claim_interval_s": 3600, **overrides})


def no_wait_retry() -> Retrying:
    """The transient-error policy without back-off delays (and without the log line of each failure)."""
    return Retrying(base_s=0.0, on_failure=lambda *args: None)


class FakeSource:
    """In-memory stand-in for StreamClient's read side. ``new`` entries are handed out by read_new; with none,
    read_new waits until more arrive or the source closes (no timer). ``fail`` holds errors to raise on the next
    calls; ``calls`` names every call made."""

    def __init__(self, pending: Sequence[RawEntry] = (), new: Sequence[RawEntry] = ()) -> None:
        self.pending, self.new = list(pending), list(new)
        self.claimable: list[RawEntry] = []
        self.deleted: list[str] = []
        self.fail: list[Exception] = []
        self.calls: list[str] = []
        self.counts: list[int] = []  # the count asked for by each read_new
        self.arrived, self.closed = asyncio.Event(), asyncio.Event()

    def add(self, *entries: RawEntry) -> None:
        self.new += entries
        self.arrived.set()

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if self.fail:
            raise self.fail.pop(0)

    async def read_new(self, count: int, block_ms: int | None) -> list[RawEntry]:
        self._maybe_fail("read_new")
        self.counts.append(count)
        if not self.new and block_ms is not None:
            self.arrived.clear()
            waiters = [asyncio.ensure_future(e.wait()) for e in (self.arrived, self.closed)]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
        taken, self.new = self.new[:count], self.new[count:]
        return taken

    async def read_own_pending(self, count: int, after: str = "0") -> list[RawEntry]:
        self._maybe_fail("read_own_pending")
        later = [e for e in self.pending if int(e[0].split("-")[0]) > int(after.split("-")[0])]
        return later[:count]

    async def delivery_counts(self, ids: Sequence[str]) -> dict[str, int]:
        self._maybe_fail("delivery_counts")
        return dict.fromkeys(ids, 3)

    async def autoclaim(
        self, min_idle_ms: int, start: str, count: int
    ) -> tuple[str, list[RawEntry], dict[str, int], list[str]]:
        self._maybe_fail("autoclaim")
        claimed, self.claimable = self.claimable[:count], self.claimable[count:]
        deleted, self.deleted = self.deleted, []
        return ("0-0" if not self.claimable else "1-0"), claimed, {e[0]: 7 for e in claimed}, deleted


class FakeModel:
    """Token ids are the characters' code points; the score of label A is 1 when the text has an "a", of B 0.25.
    ``poison``: a text whose presence fails a run; ``nan``: a text that scores NaN; ``max_rows``: larger runs
    raise ModelOutOfMemoryError; ``bad_token``: a character the tokenizer fails on. ``encoded`` and ``runs``
    record what it was asked to do."""

    def __init__(
        self, tag: str = "fake:1", *, poison: str = "", nan: str = "", max_rows: int = 10**9, bad_token: str = ""
    ) -> None:
        self.labels = ["A", "B"]
        self.stage_name = "model"
        self.stages: tuple[Stage, ...] = ()
        self.heads: tuple[Head, ...] = ()
        self.tag, self.poison, self.nan, self.max_rows, self.bad_token = tag, poison, nan, max_rows, bad_token
        self.runs: list[int] = []
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        if self.bad_token and any(self.bad_token in t for t in texts):
            raise ValueError("cannot tokenise")
        self.encoded += texts
        return [[ord(c) for c in t] for t in texts]

    def prepare(self, ids: Sequence[Sequence[int]], max_tokens: int) -> Prepared:
        return pad_chunks(ids, max_tokens, pad_id=0, overhead_tokens=0)

    def run(self, prepared: Prepared) -> np.ndarray:
        self.runs.append(prepared.size)
        if prepared.size > self.max_rows:
            raise ModelOutOfMemoryError("no room")
        out = np.empty((prepared.size, 2), dtype=np.float32)
        for chunk in prepared.chunks:
            for r, row in enumerate(chunk.rows):
                text = "".join(chr(i) for i in chunk.input_ids[r][chunk.attention_mask[r] == 1])
                if self.poison and text == self.poison:
                    raise RuntimeError("index out of range")
                out[row] = (np.nan if text == self.nan else float("a" in text), 0.25)
        return out

    def decide(self, probs: np.ndarray) -> list[list[str]]:
        return [[name for name, p in zip(self.labels, row, strict=True) if p >= 0.5] for row in probs]


class FakeTarget:
    """A shard's publish script, in memory: every record not finished yet is published once (``finished``
    records are acked only), as the real script does. ``fail`` holds errors to raise on the next calls;
    ``gate``, when given, is awaited before each call (a Redis that does not answer yet)."""

    def __init__(self, finished: Sequence[str] = ()) -> None:
        self.published: list[Outgoing] = []
        self.calls: list[list[str]] = []
        self.done = set(finished)
        self.fail: list[Exception] = []
        self.gate: asyncio.Event | None = None

    async def publish(self, records: Sequence[Outgoing]) -> Published:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise self.fail.pop(0)
        self.calls.append([r.entry_id for r in records])
        flags = [r.entry_id not in self.done for r in records]
        self.published += [r for r, new in zip(records, flags, strict=True) if new]
        self.done.update(r.entry_id for r in records)
        return Published(flags, mark=records[-1].entry_id)


class Route:
    """A shard as the publisher sees it: where its records go, under which retry policy."""

    def __init__(self, client: FakeTarget, retry: Retrying | None = None) -> None:
        self.client, self.retry = client, retry or no_wait_retry()


def counter(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    if value is None:
        raise KeyError(f"no series {name}{labels or ''}")
    return value


async def until(predicate: Callable[[], bool], changed: asyncio.Event) -> None:
    """Until ``predicate()`` holds, re-checked each time ``changed`` is set (5 s at most: a hang fails)."""
    async with asyncio.timeout(5):
        while not predicate():
            changed.clear()
            await changed.wait()
