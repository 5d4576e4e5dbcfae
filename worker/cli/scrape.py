"""``livetopic scrape URL``: a live chat (YouTube, Twitch) into the input stream, exactly once (messages, and
deletions and bans as retractions), until the chat ends or SIGINT/SIGTERM; a URL that is not a chat is refused
at once; a source that cannot be reached is given up after ``--max-retries``/``--give-up-after`` (exit 2)."""

from __future__ import annotations

import argparse
import asyncio

from ..options import REDIS_FLAGS, STREAM_FLAGS, add_settings_flags, settings_from_args
from ..settings import Settings
from .common import redis_for, run_async, stop_on_signals

__all__ = ["register"]


async def _scrape(settings: Settings, url: str, args: argparse.Namespace, chat_url: str) -> int:
    from ..sources.feed import Feed
    from ..sources.scrape import ChatDownloaderSource, GiveUp, scrape
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
        give_up = GiveUp(max_retries=args.max_retries, after_s=args.give_up_after)
        await scrape(ChatDownloaderSource(chat_url), Feed(producer, status), stop, channel=args.channel,
                     give_up=give_up)
    finally:
        status.close()
        await redis.aclose()
    return 0


def cmd_scrape(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..sources.chatnet import check_url

    chat_url = check_url(args.url)  # before anything else: a typo is refused at once
    if args.max_retries < 0 or args.give_up_after <= 0:
        raise ConfigError("--max-retries must be 0 or more and --give-up-after more than 0")
    settings = settings_from_args(args)
    with redis_for(settings) as url:
        return run_async(_scrape(settings, url, args, chat_url))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scrape", help="push a live chat (YouTube, Twitch) as it happens, exactly once",
                       description="Reads a live chat through chat-downloader (pip install 'livetopic[scrape]'); "
                                   "reconnects with back-off (see --max-retries, --give-up-after); a message seen "
                                   "within --dedupe-window-s is pushed once; deletions and bans are pushed as "
                                   "retractions (docs/INPUTS.md).")
    p.add_argument("url", help="a YouTube video or live URL, or a Twitch channel URL")
    p.add_argument("--channel", help="channel field (default: the video id or Twitch channel)")
    p.add_argument("--dedupe-window-s", type=float, default=3600.0,
                   help="skip a message id pushed within this many seconds (reconnects and restarts)")
    p.add_argument("--maxlen", type=int, help="approximate MAXLEN of the input stream")
    p.add_argument("--quiet", action="store_true", help="no status line")
    # issue 22: when a source that cannot be reached is given up (then exit 2)
    p.add_argument("--max-retries", type=int, default=10,
                   help="give up after this many failed reconnects in a row (default 10)")
    p.add_argument("--give-up-after", type=float, default=300.0, metavar="S",
                   help="give up once the source has not worked for S seconds (default 300)")
    add_settings_flags(p, (*REDIS_FLAGS, *STREAM_FLAGS))
    p.set_defaults(func=cmd_scrape)
