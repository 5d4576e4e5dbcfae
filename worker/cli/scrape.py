"""``livetopic scrape URL``: a live chat (YouTube, Twitch) into the input stream, exactly once, until the chat
ends or SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio

from ..options import REDIS_FLAGS, STREAM_FLAGS, add_settings_flags, settings_from_args
from ..settings import Settings
from .common import redis_for, run_async, stop_on_signals

__all__ = ["register"]


async def _scrape(settings: Settings, url: str, args: argparse.Namespace) -> int:
    from ..sources.feed import Feed
    from ..sources.scrape import ChatDownloaderSource, scrape
    from ..sources.status import Status
    from ..streams.client import connect
    from ..streams.keys import seen_key
    from ..streams.producer import Dedupe, StreamProducer

    stop = asyncio.Event()
    stop_on_signals(stop, "stopping scrape (the chunk in hand is finished first)",
                    "what was not yet confirmed is sent again, once, by the next run")
    redis = connect(url, timeout_s=settings.redis_timeout_s)
    producer = StreamProducer(redis, settings.input_stream, maxlen=args.maxlen,
                              dedupe=Dedupe(seen_key(settings.input_stream), args.dedupe_window_s))
    status = Status("scrape", enabled=not args.quiet)
    try:
        await producer.ensure_group(settings.group, settings.group_start_id)
        await scrape(ChatDownloaderSource(args.url), Feed(producer, status), stop, channel=args.channel)
    finally:
        status.close()
        await redis.aclose()
    return 0


def cmd_scrape(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    with redis_for(settings) as url:
        return run_async(_scrape(settings, url, args))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scrape", help="push a live chat (YouTube, Twitch) as it happens, exactly once",
                       description="Reads a live chat through chat-downloader (pip install 'livetopic[scrape]'); "
                                   "reconnects with back-off; a message seen within --dedupe-window-s is pushed once.")
    p.add_argument("url", help="a YouTube video or live URL, or a Twitch channel URL")
    p.add_argument("--channel", help="channel field (default: the video id or Twitch channel)")
    p.add_argument("--dedupe-window-s", type=float, default=3600.0,
                   help="skip a message id pushed within this many seconds (reconnects and restarts)")
    p.add_argument("--maxlen", type=int, help="approximate MAXLEN of the input stream")
    p.add_argument("--quiet", action="store_true", help="no status line")
    add_settings_flags(p, (*REDIS_FLAGS, *STREAM_FLAGS))
    p.set_defaults(func=cmd_scrape)
