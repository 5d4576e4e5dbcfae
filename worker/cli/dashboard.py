"""``livetopic dashboard``: the live page of topic heat per channel (see :mod:`worker.web.app`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ..options import REDIS_AND_STREAMS, add_command
from ..settings import Settings
from ..web.options import DashboardOptions
from .common import redis_for, run_async

__all__ = ["register"]

HELP = "a live web page of topic heat per channel, with a feed and health"


def cmd_dashboard(options: DashboardOptions, settings: Settings) -> int:
    from ..streams.shards import ShardLayout
    from ..web.app import Dashboard

    def started(url: str) -> None:
        print(f"dashboard: {url}", file=sys.stderr, flush=True)

    # the workers' Redis: --redis-url, else the embedded server of the data directory
    with redis_for(settings) as redis_url:
        dashboard = Dashboard(
            redis_url,
            settings.streams,
            options,
            timeout_s=settings.redis_timeout_s,
            layout=ShardLayout.of(settings),
        )

        async def serve() -> int:
            await dashboard.run(asyncio.Event(), on_started=started)
            return 0

        try:
            return run_async(serve())
        except KeyboardInterrupt:
            return 0


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "dashboard", cmd_dashboard, options=DashboardOptions, settings=REDIS_AND_STREAMS, help=HELP)
