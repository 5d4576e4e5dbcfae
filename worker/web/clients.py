"""The pages subscribed to ``/events``: at most ``max_clients`` at once (one more is refused with a 503 that says
why), and at most ``client_buffer_bytes`` queued for each. Each tick's view is queued for every page; a page
that reads slower than that, or not at all, sees its queue grow, and once the next view would not fit it is
dropped (its connection reset, its queue freed, in the process and in the kernel: the page's EventSource
connects again when it can). So the dashboard holds at most ``max_clients × client_buffer_bytes`` for its pages
whatever they do.

The check is made before each write, with the transport's high-water mark set to the same limit, so a write
never waits for a page: a page cannot hold up its handler either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .options import DashboardOptions

__all__ = ["Clients"]

log = logging.getLogger("livetopic.dashboard")

_REFUSAL_LOG_EVERY_S = 10.0


class Clients:
    """Counts of the pages: connected now, refused and dropped since the start."""

    def __init__(self, limits: DashboardOptions, *, clock: Any = time.monotonic) -> None:
        self.limits, self.clock = limits, clock
        self.connected = self.refused = self.dropped = 0
        self._refusals_logged_at: float | None = None

    def admit(self) -> bool:
        """Take a place for a page; False (counted, logged now and then) when all ``max_clients`` are taken."""
        if self.connected < self.limits.max_clients:
            self.connected += 1
            return True
        self.refused += 1
        now = self.clock()
        if self._refusals_logged_at is None or now - self._refusals_logged_at >= _REFUSAL_LOG_EVERY_S:
            self._refusals_logged_at = now
            log.warning("dashboard: %s (%d refused so far)", self.refusal(), self.refused)
        return False

    def refusal(self) -> str:
        n = self.limits.max_clients
        return (
            f"too many pages: {self.connected} pages connected, the most this dashboard serves "
            f"(--max-clients {n}); try again later"
        )

    def release(self) -> None:
        self.connected -= 1

    def watch(self, transport: asyncio.Transport) -> None:
        """Let the transport buffer up to the limit before it asks writers to wait (so writes never wait)."""
        transport.set_write_buffer_limits(high=self.limits.client_buffer_bytes)

    def fits(self, transport: asyncio.Transport | None, size: int) -> bool:
        """Whether ``size`` more bytes keep the page's queue within ``client_buffer_bytes``."""
        if transport is None or transport.is_closing():
            return False
        return transport.get_write_buffer_size() + size <= self.limits.client_buffer_bytes

    def drop(self, transport: asyncio.Transport | None, size: int, peer: object) -> None:
        """Abort a page whose queue would pass the limit with ``size`` more bytes (its queue is freed)."""
        if transport is None or transport.is_closing():
            return  # it went away by itself
        self.dropped += 1
        queued = transport.get_write_buffer_size()
        log.warning(
            "dashboard: dropped page %s: it is not reading (%d bytes queued, %d more would pass "
            "--client-buffer-bytes %d)",
            peer,
            queued,
            size,
            self.limits.client_buffer_bytes,
        )
        sock = transport.get_extra_info("socket")
        if sock is not None:  # reset, not close: the kernel drops what it still holds for the page too
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def stats(self) -> dict[str, int]:
        return {
            "connected": self.connected,
            "max": self.limits.max_clients,
            "refused": self.refused,
            "dropped": self.dropped,
        }
