"""The dashboard's options (the ``livetopic dashboard`` flags, and what :class:`~.app.Dashboard` is given):
declared here once, with their defaults. The streams it reads are the settings' (:class:`~worker.settings.Settings`)."""

from __future__ import annotations

from pydantic import Field

from ..options import Options
from .message import MAX_EVENT_BYTES

__all__ = ["MIN_CLIENT_BUFFER_BYTES", "DashboardOptions"]

MIN_CLIENT_BUFFER_BYTES = MAX_EVENT_BYTES  # room for one view, or no page could get the largest


class DashboardOptions(Options):
    host: str = Field("127.0.0.1", description="bind address")
    port: int = Field(9500, ge=0, le=65535, description="port (0: any free one)")
    max_channels: int = Field(50, gt=0, description="channels shown one by one; further ones are counted as (other)")
    update_interval_s: float = Field(0.5, gt=0, description="seconds between updates sent to a page")
    feed_size: int = Field(30, gt=0, description="comments in the live feed")
    max_clients: int = Field(100, gt=0, description="pages served at once; one more gets a 503")
    client_buffer_bytes: int = Field(
        1024 * 1024,
        ge=MIN_CLIENT_BUFFER_BYTES,
        description="bytes queued for a page at most; a page that falls "
        f"further behind (it stopped reading) is dropped (at least one view, {MIN_CLIENT_BUFFER_BYTES})",
    )
