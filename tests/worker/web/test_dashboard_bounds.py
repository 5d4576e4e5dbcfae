"""The dashboard's bounds, in process against a real redis-server: a view stays under 512 KiB whatever the output
stream holds (60 channels with 60 KB names, long users, texts, labels and models); pages beyond ``max_clients``
get a 503 that says why; a page that stops reading is dropped once what is queued for it would pass
``client_buffer_bytes``, and the others go on. (RSS of a real dashboard process: tests/integration/
test_dashboard_memory.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from worker.settings import Settings
from worker.tools.embedded import EmbeddedRedis
from worker.web.options import DashboardOptions

from .hostile import channel_name, fill

VIEW_BOUND_B = 512 * 1024  # what deploy/README.md promises ("The live page")


def http() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(read_bufsize=4 * VIEW_BOUND_B)  # an event (one line) may be 512 KiB


def now_ms() -> int:
    return int(time.time() * 1000)


@contextlib.asynccontextmanager
async def serving(url: str, **options: Any) -> AsyncIterator[str]:
    """A :class:`Dashboard` in this event loop on a free port, ready (its history read); its base URL."""
    from worker.web.app import Dashboard

    dashboard = Dashboard(
        url, Settings().streams, DashboardOptions(port=0, update_interval_s=0.05, **options), health_interval_s=0.5
    )
    stop = asyncio.Event()
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(dashboard.run(stop, on_started=started.set_result))
    try:
        base = await asyncio.wait_for(started, 30)
        async with http() as session:
            while (await session.get(base + "readyz")).status != 200:
                assert not task.done()
                await asyncio.sleep(0.05)
        yield base
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def clients(session: aiohttp.ClientSession, base: str) -> dict[str, int]:
    async with session.get(base + "healthz") as resp:
        body: dict[str, Any] = await resp.json()
        return dict(body["clients"])


async def until_clients(session: aiohttp.ClientSession, base: str, **expect: int) -> dict[str, int]:
    async with asyncio.timeout(60):
        while True:
            found = await clients(session, base)
            if all(found[k] == v for k, v in expect.items()):
                return found
            await asyncio.sleep(0.05)


async def test_a_view_stays_bounded_in_bytes_with_60_channels_of_60_kb(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis
) -> None:
    await fill(redis_client, now_ms())
    sizes = {}
    async with serving(redis_server.url) as base, http() as session:
        for window in ("5m", "15m", "60m", "all"):
            for channel in ("", channel_name(7)[:256], "no such channel"):
                async with session.get(base + "api/view", params={"window": window, "channel": channel}) as resp:
                    body = await resp.read()
                sizes[window, channel[:3]] = len(body)
        view = json.loads(body)
        assert max(sizes.values()) <= VIEW_BOUND_B, sizes
        async with session.get(base + "events", params={"window": "all"}) as resp:
            message = await resp.content.readuntil(b"\n\n")
    assert len(message) <= VIEW_BOUND_B
    whole = json.loads(message.removeprefix(b"data: "))
    assert len(whole["channels"]) == 52  # all, 50 channels, (other)
    assert all(len(c["name"]) <= 256 for c in whole["channels"])
    assert whole["feed"] and all(len(item["text"]) <= 501 and len(item["user"]) <= 256 for item in whole["feed"])
    assert len(whole["labels"]) == 64 and all(len(label) <= 64 for label in whole["labels"])
    assert len(whole["series"]["comments"]) > 100 and whole["counts"]["comments"] == 120
    print("bytes per view:", sizes, "SSE message:", len(message), "left out:", whole.get("cut"))
    assert view["channel"] == "no such channel" and view["feed"] == []


async def test_pages_beyond_the_cap_get_a_503_that_says_why(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis
) -> None:
    async with serving(redis_server.url, max_clients=3) as base, http() as session:
        pages = [await session.get(base + "events") for _ in range(3)]
        for page in pages:
            assert page.status == 200
            await page.content.readuntil(b"\n\n")
        over = await session.get(base + "events")
        assert over.status == 503 and over.headers["Retry-After"]
        assert "3 pages connected" in await over.text() and "--max-clients 3" in await over.text()
        assert await clients(session, base) == {"connected": 3, "max": 3, "refused": 1, "dropped": 0}
        pages[0].close()
        await until_clients(session, base, connected=2)
        again = await session.get(base + "events")
        assert again.status == 200
        await again.content.readuntil(b"\n\n")
        for page in [*pages, again]:
            page.close()


def silent_page(port: int) -> socket.socket:
    """A page that asks for events and never reads them (a small receive buffer: the kernel holds little)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /events?window=all HTTP/1.1\r\nHost: dashboard\r\n\r\n")
    return sock


async def test_a_page_that_stops_reading_is_dropped_and_the_others_go_on(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis
) -> None:
    await fill(redis_client, now_ms())  # views of a few hundred KB: a silent page falls behind at once
    async with serving(redis_server.url, client_buffer_bytes=1024 * 1024) as base, http() as session:
        received: list[int] = []

        async def read_all() -> None:
            async with session.get(base + "events", params={"window": "all"}) as resp:
                while True:
                    received.append(len(await resp.content.readuntil(b"\n\n")))

        reader = asyncio.create_task(read_all())
        sock = silent_page(int(base.rsplit(":", 1)[1].rstrip("/")))
        try:
            found = await until_clients(session, base, dropped=1)
            assert found["connected"] == 1 and found["refused"] == 0
            seen = len(received)
            async with asyncio.timeout(30):
                while len(received) < seen + 3:  # the reading page still gets every tick
                    assert not reader.done()
                    await asyncio.sleep(0.05)
            assert max(received) <= VIEW_BOUND_B
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            sock.close()
