"""``livetopic scrape URL``: a live chat (YouTube, Twitch) into the input stream, exactly once (messages, and
deletions and bans as retractions), until the chat ends or SIGINT/SIGTERM; a URL that is not a chat is refused
at once; a source that cannot be reached is given up after ``--max-retries``/``--give-up-after`` (exit 2)."""

from __future__ import annotations

import argparse
import re
from typing import Annotated

from pydantic import AfterValidator, Field

from ..options import Flag
from ..settings import Settings
from .common import redis_for, run_async
from .producing import ProducerOptions, live_feed, register_producer

__all__ = ["ScrapeOptions", "register"]

HELP = "push a live chat (YouTube, Twitch) as it happens, exactly once"
ABOUT = (
    "Reads a live chat through chat-downloader (pip install 'livetopic[scrape]'); reconnects with back-off; a "
    "message seen within --dedupe-window-s is pushed once."
)


def _host_port(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[^\s:]+:[0-9]{1,5}", value):
        raise ValueError(f"not HOST:PORT: {value!r} (e.g. 127.0.0.1:6667)")
    return value


class ScrapeOptions(ProducerOptions):
    url: Annotated[str, Flag(positional=True, metavar="URL")] = Field(
        description="a YouTube video or live URL, or a Twitch channel URL"
    )
    max_retries: int = Field(10, ge=0, description="give up (exit 2) after this many failed reconnects in a row")
    give_up_after: Annotated[float, Flag(metavar="S")] = Field(
        300.0, gt=0, description="give up (exit 2) once the source has not worked for S seconds"
    )
    twitch_irc: Annotated[str | None, Flag(metavar="HOST:PORT"), AfterValidator(_host_port)] = Field(
        None,
        description="read Twitch chat from this IRC server instead of irc.chat.twitch.tv:6667 (a relay, a local "
        "stand-in)",
    )
    twitch_api: Annotated[str | None, Flag(metavar="URL")] = Field(
        None,
        pattern=r"^https?://",
        description="ask this GraphQL endpoint whether a Twitch channel is live, instead of https://gql.twitch.tv/gql",
    )


async def _scrape(settings: Settings, url: str, options: ScrapeOptions, chat_url: str) -> int:
    from ..sources.scrape import ChatDownloaderSource, GiveUp, scrape

    give_up = GiveUp(max_retries=options.max_retries, after_s=options.give_up_after)
    irc = options.twitch_irc.rpartition(":") if options.twitch_irc else None
    source = ChatDownloaderSource(
        chat_url, twitch_irc=(irc[0], int(irc[2])) if irc else None, twitch_api=options.twitch_api
    )
    async with live_feed(settings, url, options, "scrape") as live:
        await scrape(source, live.feed, live.stop, channel=options.channel, give_up=give_up)
    return 0


def cmd_scrape(options: ScrapeOptions, settings: Settings) -> int:
    from ..sources.chatnet import check_url

    chat_url = check_url(options.url)  # before anything else: a typo is refused at once
    with redis_for(settings) as url:
        return run_async(_scrape(settings, url, options, chat_url))


def register(sub: argparse._SubParsersAction) -> None:
    register_producer(sub, "scrape", cmd_scrape, ScrapeOptions, help=HELP, description=ABOUT)
