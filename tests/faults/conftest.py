"""Helpers for the fault tests: in-process workers (cheap: no interpreter or torch start-up per worker)
and checks of the promise (each pushed entry finished exactly once) against the real streams."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from worker.model.load import load_model
from worker.model.runtime import LoadedModel
from worker.service.worker import Worker
from worker.tools.embedded import EmbeddedRedis, bundled_redis_server, redis7_on_path

from .memory import CLIENT_BUFFERS_TOLERANCE_B, MemoryPeaks, read_memory

INPUT, OUTPUT, DEAD, GROUP = "livetopic:comments", "livetopic:topics", "livetopic:dead", "livetopic"
MAXMEMORY_B = 64 * 1024 * 1024


class Server:
    """A redis-server with ``maxmemory`` (noeviction) and a thread that samples its memory every 10 ms: the
    fixture fails a test whose data went past the limit by more than one script call's writes, or whose clients'
    buffers grew past it by more than ``clients_tolerance_b`` (a test reading long entries raises it)."""

    def __init__(self, executable: str, data_dir: Path) -> None:
        self.embedded = EmbeddedRedis(data_dir, executable=executable, appendonly=True).start()
        self.url = self.embedded.url
        self.sync = redis.Redis.from_url(self.url, socket_timeout=10)
        self.version = str(self.sync.info("server")["redis_version"])
        self.memory = MemoryPeaks()
        self.clients_tolerance_b = CLIENT_BUFFERS_TOLERANCE_B
        self.set_maxmemory(MAXMEMORY_B)
        self.sync.config_set("maxmemory-policy", "noeviction")
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def set_maxmemory(self, limit_b: int) -> None:
        if not limit_b:  # stop sampling before Redis lets memory grow
            self.memory.set_limit(0, {})
        self.sync.config_set("maxmemory", str(limit_b))
        if limit_b:
            self.memory.set_limit(limit_b, read_memory(self.sync))

    def used_b(self) -> int:
        return int(self.sync.info("memory")["used_memory"])

    def _sample(self) -> None:
        client = redis.Redis.from_url(self.url, socket_timeout=5)
        while not self._stop.wait(0.01):
            try:
                memory = read_memory(client)
            except redis.RedisError:
                continue
            self.memory.sample(memory)
        client.close()

    def close(self) -> None:
        self._stop.set()
        self._sampler.join(5)
        self.sync.close()
        self.embedded.stop(kill=True)


def _executables() -> list[object]:
    out: list[object] = [pytest.param(bundled_redis_server(), id="embedded-6.2")]
    system = redis7_on_path()
    out.append(
        pytest.param(system, id="system-7")
        if system
        else pytest.param(None, id="system-7", marks=pytest.mark.skip(reason="no redis-server >= 7 on PATH"))
    )
    return out


@pytest.fixture(params=_executables())
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    srv = Server(request.param, tmp_path / "redis")
    try:
        yield srv
    finally:
        srv.close()
    peaks = srv.memory
    print(f"redis {srv.version}: data {peaks.data_over_b} B past maxmemory, clients {peaks.clients_growth_b} B")
    assert not peaks.problems(srv.clients_tolerance_b), peaks.problems(srv.clients_tolerance_b)


@pytest.fixture
async def client(server: Server) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client of ``server`` (bytes in, bytes out)."""
    c = aioredis.Redis.from_url(server.url)
    yield c
    await c.aclose()


@pytest.fixture(scope="session")
def tiny_model(tiny_repo: Path) -> LoadedModel:
    import torch

    torch.set_num_threads(1)  # the machine is shared: keep in-process inference on one core
    return load_model(tiny_repo, 1)


@pytest.fixture
def stuck_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """LoadedModel.run waits (up to 30 s) until the returned event is set: a model stuck on a batch."""
    release = threading.Event()
    real_run = LoadedModel.run

    def stuck(self: LoadedModel, prepared: Any) -> Any:
        release.wait(30)
        return real_run(self, prepared)

    monkeypatch.setattr(LoadedModel, "run", stuck)
    yield release
    release.set()


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


def comments(n: int, tag: str = "", *, ids: bool = False) -> list[dict[str, str]]:
    """``n`` comments of many lengths (CJK and Latin), tagged; with ``ids``, an ``id`` field each (TAG<i>)."""
    return [
        {"text": f"第{i}則留言 {tag} 加油 nice block {'x' * (i % 40)}", "user": f"u{i}"}
        | ({"id": f"{tag}{i}"} if ids else {})
        for i in range(n)
    ]


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


async def until(
    check: Callable[[], bool | Awaitable[bool]],
    timeout_s: float = 30,
    *,
    task: asyncio.Task[Any] | None = None,
    every_s: float = 0.02,
) -> None:
    """Until ``check()`` (a function, or one that returns an awaitable) holds: the state of Redis or of the worker
    polled, as nothing signals it; fails early where ``task`` (the worker's) ends."""
    async with asyncio.timeout(timeout_s):
        while True:
            if task is not None and task.done():
                task.result()
                raise AssertionError("worker stopped early")
            held = check()
            if await held if inspect.isawaitable(held) else held:
                return
            await asyncio.sleep(every_s)


async def wait_finished(
    client: aioredis.Redis, ids: Iterable[str], *, task: asyncio.Task[Any] | None = None, timeout_s: float = 60
) -> None:
    """Until every id in ``ids`` has a result or a dead letter (fails early if ``task`` ends)."""
    wanted = set(ids)

    async def all_in() -> bool:
        out, dead = await finished(client)
        return wanted <= {e["source_id"] for e in out + dead}

    await until(all_in, timeout_s, task=task, every_s=0.05)


async def wait_count(
    client: aioredis.Redis, n: int, streams: Iterable[str] = (OUTPUT, DEAD), timeout_s: float = 30
) -> None:
    """Until ``streams`` (results and dead letters) hold ``n`` entries together."""
    named = list(streams)

    async def enough() -> bool:
        return sum([await client.xlen(name) for name in named]) >= n

    await until(enough, timeout_s)


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
