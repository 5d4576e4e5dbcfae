"""What ``push`` and ``scrape`` share: the producer's options, the producer (exactly-once XADD into the input
stream, the consumer group made), the live set-up (stop signals, the status line, the feed), and the
subcommand's flags."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ..options import REDIS_AND_STREAMS, WAIT_FLAGS, Options, add_command
from ..settings import Settings
from .common import stop_on_signals

if TYPE_CHECKING:
    from ..sources.feed import Feed
    from ..streams.sharded import ShardedProducer

__all__ = ["LiveFeed", "ProducerOptions", "live_feed", "producer", "register_producer"]


class ProducerOptions(Options):
    channel: str | None = Field(
        None, description="channel field of comments that have none (scrape: default the video id or Twitch channel)"
    )
    maxlen: int | None = Field(None, ge=1, description="approximate MAXLEN of the input stream")
    dedupe_window_s: float = Field(
        3600.0,
        ge=0,
        description="a live source (push --follow, a pipe, scrape): skip "
        "a message id pushed within this many seconds, as reconnects and restarts send "
        "again (0: off)",
    )
    retry_s: float = Field(
        120.0, gt=0, description="ride out Redis faults (restarts, out of memory…) this long before giving up"
    )
    quiet: bool = Field(False, description="no progress bar or status line")


@contextlib.asynccontextmanager
async def producer(
    settings: Settings, url: str, options: ProducerOptions, *, dedupe: bool = False
) -> AsyncIterator[ShardedProducer]:
    """A producer into the input stream's shards, each comment to its channel's (with the message-id window where
    ``dedupe``), the groups made."""
    from ..streams.client import connect
    from ..streams.durable import Durability
    from ..streams.sharded import ShardedProducer
    from ..streams.shards import ShardLayout

    redis = connect(url, timeout_s=settings.redis_timeout_s, cluster=settings.redis_cluster)
    made = ShardedProducer(
        redis,
        ShardLayout.of(settings),
        maxlen=options.maxlen,
        max_retry_s=options.retry_s,
        dedupe_window_s=options.dedupe_window_s if dedupe else 0.0,
        durability=Durability(settings.wait_replicas, settings.wait_timeout_ms),
    )
    try:
        await made.ensure_group(settings.group, settings.group_start_id)
        yield made
    finally:
        await redis.aclose()


@dataclass(frozen=True, slots=True)
class LiveFeed:
    feed: Feed
    stop: asyncio.Event  # set by SIGTERM / SIGINT


@contextlib.asynccontextmanager
async def live_feed(settings: Settings, url: str, options: ProducerOptions, label: str) -> AsyncIterator[LiveFeed]:
    """A source that keeps running: the feed into the producer (deduplicated), the status line, and the stop
    that the first SIGTERM or SIGINT sets."""
    from ..sources.feed import Feed
    from ..sources.status import Status

    stop = asyncio.Event()
    stop_on_signals(
        stop,
        f"stopping {label} (the chunk in hand is finished first)",
        "what was not yet confirmed is sent again, once, by the next run",
    )
    status = Status(label, enabled=not options.quiet)
    try:
        async with producer(settings, url, options, dedupe=True) as made:
            yield LiveFeed(Feed(made, status), stop)
    finally:
        status.close()


def register_producer(
    sub: argparse._SubParsersAction,
    name: str,
    run: Callable[[Any, Settings], int],
    options: type[ProducerOptions],
    *,
    help: str,
    description: str,
) -> None:
    """The producing subcommand ``name``: its options' flags, then Redis's, the streams' and the WAIT flags."""
    add_command(
        sub, name, run, options=options, settings=(*REDIS_AND_STREAMS, *WAIT_FLAGS), help=help, description=description
    )
