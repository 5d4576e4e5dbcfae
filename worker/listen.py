"""Start an aiohttp app on ``host:port`` (port 0: any free one) and say which port it got: the one place that
does it, for the worker's metrics server and the dashboard. aiohttp's public API only (``AppRunner.addresses``)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .errors import ConfigError

__all__ = ["Listening", "listen"]


@dataclass(frozen=True, slots=True)
class Listening:
    """An app being served: its bound ``port``; :meth:`close` stops it."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def close(self) -> None:
        await self.runner.cleanup()


async def listen(
    app: web.Application, host: str, port: int, *, what: str, hint: str = "", shutdown_timeout_s: float = 60.0
) -> Listening:
    """Serve ``app`` on ``host:port``. A port that cannot be bound (in use, not allowed) raises
    :class:`ConfigError` naming ``what`` is served, the address and the reason, then ``hint`` (what to change)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        said = f"cannot serve {what} on {host}:{port}: {exc.strerror or exc}"
        raise ConfigError(f"{said}; {hint}" if hint else said) from exc
    bound = int(runner.addresses[0][1])  # (host, port) or, for IPv6, (host, port, flowinfo, scope)
    return Listening(runner, host, bound)
