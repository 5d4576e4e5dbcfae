"""``livetopic dashboard``: the aiohttp service. One page (``/``) with its own script, charts and styles
(``/static/…``, shipped in the package: the page works offline, and its Content-Security-Policy allows
nothing from elsewhere), Server-Sent Events with the page's view (``/events?channel=C&window=W``, one
message per tick, at most ``max_clients`` pages at once, each dropped once ``client_buffer_bytes`` are queued
for it: :mod:`.clients`), the same view as JSON (``/api/view``; a view is at most 512 KiB: :mod:`.message`),
``/healthz`` (with the pages' counts) and ``/readyz`` (ready once the output stream's history is read and Redis
answers)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from ..listen import listen
from ..settings import StreamNames
from ..streams.client import connect
from ..streams.shards import ShardLayout
from .aggregate import ALL, MAX_NAME_CHARS, WINDOWS
from .assets import CONTENT_TYPES, static_text
from .clients import Clients
from .live import Live
from .message import sse_event
from .options import DashboardOptions

__all__ = ["Dashboard", "DashboardOptions"]

log = logging.getLogger("livetopic.dashboard")

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _query(request: web.Request) -> tuple[str, str]:
    """The channel (no channel has a longer name than the aggregator keeps) and the window asked for."""
    window = request.query.get("window", "15m")
    return request.query.get("channel", ALL)[:MAX_NAME_CHARS], window if window in WINDOWS else "15m"


class Dashboard:
    def __init__(
        self,
        redis_url: str,
        streams: StreamNames,
        options: DashboardOptions,
        *,
        timeout_s: float = 10.0,
        health_interval_s: float = 2.0,
        layout: ShardLayout | None = None,
    ) -> None:
        self.options = options
        self.redis = connect(redis_url, timeout_s=timeout_s, cluster=layout is not None and layout.cluster)
        self.live = Live(self.redis, streams, options, health_interval_s=health_interval_s, layout=layout)
        self.clients = Clients(options)
        self.port = options.port
        self._streams: set[asyncio.Task[Any]] = set()
        self.app = web.Application()
        self.app.router.add_get("/", self._page)
        self.app.router.add_get("/static/{name}", self._static)
        self.app.router.add_get("/events", self._events)
        self.app.router.add_get("/api/view", self._view)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)

    # --- handlers -----------------------------------------------------------------------------------
    @staticmethod
    def _file(name: str) -> web.Response:
        return web.Response(
            text=static_text(name),
            content_type=CONTENT_TYPES[name],
            charset="utf-8",
            headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"},
        )

    async def _page(self, _request: web.Request) -> web.Response:
        return self._file("index.html")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in CONTENT_TYPES:
            raise web.HTTPNotFound()
        return self._file(name)

    async def _view(self, request: web.Request) -> web.Response:
        channel, window = _query(request)
        return web.Response(
            body=await self.live.encoded_view(channel, window), content_type="application/json", charset="utf-8"
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if not self.clients.admit():
            return web.Response(status=503, text=self.clients.refusal(), headers={"Retry-After": "10"})
        try:
            return await self._stream(request, *_query(request))
        finally:
            self.clients.release()

    async def _stream(self, request: web.Request, channel: str, window: str) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        transport = request.transport
        if transport is not None:
            self.clients.watch(transport)
        seen = -1
        try:
            while True:
                seen = await self.live.next_tick(seen)
                message = sse_event(await self.live.encoded_view(channel, window))
                if not self.clients.fits(transport, len(message)):
                    self.clients.drop(transport, len(message), request.remote)
                    break
                await resp.write(message)
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the page went away, or the dashboard stops
        finally:
            self._streams.discard(task)
        return resp

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "clients": self.clients.stats()})

    async def _readyz(self, _request: web.Request) -> web.Response:
        live = self.live
        if not live.redis_ok:
            return web.json_response({"ready": False, "reason": "redis unreachable"}, status=503)
        if not live.history_loaded:
            return web.json_response(
                {"ready": False, "reason": "reading the output stream's history", "ingested": live.board.ingested},
                status=503,
            )
        return web.json_response({"ready": True, "reason": "ok", "ingested": live.board.ingested})

    # --- lifecycle ----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, on_started: Any = None) -> None:
        """Serve until ``stop`` is set; ``on_started(url)`` is called once the port is bound."""
        try:
            listening = await listen(
                self.app,
                self.options.host,
                self.options.port,
                what="the dashboard",
                hint="choose another --port, or 0 for any free port",
                shutdown_timeout_s=2.0,
            )
            self.port = listening.port
            log.info("dashboard at %s", listening.url)
            try:
                if on_started is not None:
                    on_started(listening.url)
                await self.live.run(stop)
            finally:
                for task in list(self._streams):
                    task.cancel()
                await listening.close()
        finally:
            await self.redis.aclose()
