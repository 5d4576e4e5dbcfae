"""``livetopic scrape URL``: a live chat (YouTube, Twitch) into the input stream, exactly once, until the chat
ends or SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
from typing import Annotated

from pydantic import Field

from ..options import REDIS_AND_STREAMS, Flag, add_command
from ..settings import Settings
from .common import redis_for, run_async
from .producing import ProducerOptions, live_feed

__all__ = ["ScrapeOptions", "register"]

HELP = "push a live chat (YouTube, Twitch) as it happens, exactly once"
ABOUT = (
    "Reads a live chat through chat-downloader (pip install 'livetopic[scrape]'); reconnects with back-off; a "
    "message seen within --dedupe-window-s is pushed once."
)


class ScrapeOptions(ProducerOptions):
    url: Annotated[str, Flag(positional=True, metavar="URL")] = Field(
        description="a YouTube video or live URL, or a Twitch channel URL"
    )


async def _scrape(settings: Settings, url: str, options: ScrapeOptions) -> int:
    from ..sources.scrape import ChatDownloaderSource, scrape

    async with live_feed(settings, url, options, "scrape") as live:
        await scrape(ChatDownloaderSource(options.url), live.feed, live.stop, channel=options.channel)
    return 0


def cmd_scrape(options: ScrapeOptions, settings: Settings) -> int:
    with redis_for(settings) as url:
        return run_async(_scrape(settings, url, options))


def register(sub: argparse._SubParsersAction) -> None:
    add_command(
        sub, "scrape", cmd_scrape, options=ScrapeOptions, settings=REDIS_AND_STREAMS, help=HELP, description=ABOUT
    )
