"""``livetopic dashboard``: the live page of topic heat per channel (see :mod:`worker.web.app`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ..errors import ConfigError
from ..options import REDIS_FLAGS, STREAM_FLAGS, add_settings_flags, settings_from_args
from ..web.clients import DEFAULT_CLIENT_BUFFER_BYTES, DEFAULT_MAX_CLIENTS, MIN_CLIENT_BUFFER_BYTES
from .common import redis_for, run_async

__all__ = ["register"]


def _positive(kind: type[int] | type[float], minimum: int | None = None) -> object:
    def parse(value: str) -> int | float:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
        if number <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
        if minimum is not None and number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} (one view and its framing), got {value}")
        return number
    return parse


def cmd_dashboard(args: argparse.Namespace) -> int:
    from ..web.app import Dashboard, DashboardOptions
    from ..web.live import LiveOptions

    settings = settings_from_args(args)
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    live = LiveOptions(output_stream=settings.output_stream, input_stream=settings.input_stream,
                       dead_letter_stream=settings.dead_letter_stream, group=settings.group,
                       update_interval_s=args.update_interval_s, max_channels=args.max_channels,
                       feed_size=args.feed_size)

    def started(url: str) -> None:
        print(f"dashboard: {url}", file=sys.stderr, flush=True)

    # the workers' Redis: --redis-url, else the embedded server of the data directory
    with redis_for(settings) as redis_url:
        options = DashboardOptions(args.host, args.port, live, max_clients=args.max_clients,
                                   client_buffer_bytes=args.client_buffer_bytes)
        dashboard = Dashboard(redis_url, options, timeout_s=settings.redis_timeout_s)

        async def serve() -> int:
            await dashboard.run(asyncio.Event(), on_started=started)
            return 0

        try:
            return run_async(serve())
        except KeyboardInterrupt:
            return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="a live web page of topic heat per channel, with a feed and health")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=9500, help="port (default: 9500; 0: any free one)")
    p.add_argument("--max-channels", type=_positive(int), default=50,
                   help="channels shown one by one; further ones are counted as (other) (default: 50)")
    p.add_argument("--update-interval-s", type=_positive(float), default=0.5,
                   help="seconds between updates sent to a page (default: 0.5)")
    p.add_argument("--feed-size", type=_positive(int), default=30, help="comments in the live feed (default: 30)")
    p.add_argument("--max-clients", type=_positive(int), default=DEFAULT_MAX_CLIENTS,
                   help="pages served at once; one more gets a 503 (default: %(default)s)")
    p.add_argument("--client-buffer-bytes", type=_positive(int, MIN_CLIENT_BUFFER_BYTES),
                   default=DEFAULT_CLIENT_BUFFER_BYTES,
                   help="bytes queued for a page at most; a page that falls further behind (it stopped reading) is "
                   "dropped (default: %(default)s; at least one view, " + str(MIN_CLIENT_BUFFER_BYTES) + ")")
    add_settings_flags(p, (*REDIS_FLAGS, *STREAM_FLAGS))
    p.set_defaults(func=cmd_dashboard)
