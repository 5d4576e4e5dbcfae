"""The aiohttp app on the metrics port: ``/metrics``, ``/healthz``, ``/readyz`` (answered by the worker's
:class:`~.health.Health`)."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..listen import Listening, listen

__all__ = ["HttpServer", "Probe"]


class Probe(Protocol):
    def readiness(self) -> tuple[bool, str]: ...

    def liveness(self) -> tuple[bool, str]: ...


class HttpServer:
    def __init__(self, probe: Probe, registry: CollectorRegistry, host: str, port: int) -> None:
        self.probe, self.registry, self.host, self.port = probe, registry, host, port
        self._listening: Listening | None = None
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self.app = app

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _request: web.Request) -> web.Response:
        # Answering at all proves the event loop is alive; the probe adds whether the pipeline moves.
        alive, reason = self.probe.liveness()
        return web.json_response(
            {"status": "ok" if alive else "stalled", "reason": reason}, status=200 if alive else 503
        )

    async def _readyz(self, _request: web.Request) -> web.Response:
        ready, reason = self.probe.readiness()
        return web.json_response({"ready": ready, "reason": reason}, status=200 if ready else 503)

    async def start(self) -> int:
        """Start serving; returns the bound port (the one asked for, or any free one for port 0)."""
        self._listening = await listen(
            self.app,
            self.host,
            self.port,
            what="metrics",
            hint="each worker on a host needs its own --metrics-port (LIVETOPIC_METRICS_PORT), or 0 for any free port",
        )
        self.port = self._listening.port
        return self.port

    async def stop(self) -> None:
        if self._listening is not None:
            await self._listening.close()
            self._listening = None
