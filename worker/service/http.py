"""The aiohttp app on the metrics port: ``/metrics``, ``/healthz``, ``/readyz``."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..errors import ConfigError

__all__ = ["HttpServer", "Probe"]


class Probe(Protocol):
    registry: CollectorRegistry

    def readiness(self) -> tuple[bool, str]: ...

    def liveness(self) -> tuple[bool, str]: ...


class HttpServer:
    def __init__(self, probe: Probe, host: str, port: int) -> None:
        self.probe, self.host, self.port = probe, host, port
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self.app = app

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.probe.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _request: web.Request) -> web.Response:
        # Answering at all proves the event loop is alive; the probe adds whether the pipeline moves.
        alive, reason = self.probe.liveness()
        return web.json_response({"status": "ok" if alive else "stalled", "reason": reason},
                                 status=200 if alive else 503)

    async def _readyz(self, _request: web.Request) -> web.Response:
        ready, reason = self.probe.readiness()
        return web.json_response({"ready": ready, "reason": reason}, status=200 if ready else 503)

    async def start(self) -> int:
        """Start serving; returns the bound port (useful with port 0)."""
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror or exc}; each worker on a host "
                "needs its own --metrics-port (LIVETOPIC_METRICS_PORT), or 0 for any free port") from exc
        self._runner = runner
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = int(server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
