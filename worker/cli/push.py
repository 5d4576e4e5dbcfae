"""``livetopic push``: put comments into the input stream, exactly once: from files (replayed at once, at a
``--rate`` or with their own timing), from a pipe (``-``: each line as it arrives), or from files still being
written (``--follow``: like ``tail -F``, resuming where the last run stopped)."""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
import sys
import time
from pathlib import Path

from ..errors import LivetopicError
from ..options import REDIS_FLAGS, STREAM_FLAGS, add_settings_flags, settings_from_args
from ..settings import Settings
from .common import redis_for, run_async, stop_on_signals

__all__ = ["register"]


def _is_pipe(path: Path) -> bool:
    """``-``, or a path that is a pipe or a terminal rather than a file (``<(scraper)``, ``/dev/stdin``)."""
    if str(path) == "-":
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


async def _push_files(settings: Settings, url: str, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..inputs import read_inputs, summary_of_skipped
    from ..sources.replay import due_times, paced
    from ..streams.client import connect
    from ..streams.producer import StreamProducer

    reading = read_inputs(args.files, channel=args.channel, limit=args.limit)
    records = reading.records
    redis = connect(url, timeout_s=settings.redis_timeout_s)
    producer = StreamProducer(redis, settings.input_stream, maxlen=args.maxlen)
    try:
        await producer.ensure_group(settings.group)
        started = time.monotonic()
        due = due_times(records, rate=args.rate, speed=args.speed)
        with tqdm(total=len(records), unit="comment", disable=args.quiet, file=sys.stderr) as bar:
            async for batch in paced(records, due):
                await producer.add([r.fields for r in batch])
                bar.update(len(batch))
        elapsed = time.monotonic() - started
        print(f"pushed {len(records)} comments to {settings.input_stream} in {elapsed:.2f}s", file=sys.stderr)
        if reading.skipped:
            print(summary_of_skipped(reading.skipped), file=sys.stderr)
    finally:
        await redis.aclose()
    return 0


async def _push_live(settings: Settings, url: str, args: argparse.Namespace) -> int:
    from ..sources.feed import Feed, follow_files, read_pipe
    from ..sources.status import Status
    from ..streams.client import connect
    from ..streams.positions import seen_key
    from ..streams.producer import Dedupe, StreamProducer

    stop = asyncio.Event()
    stop_on_signals(stop, "push")
    redis = connect(url, timeout_s=settings.redis_timeout_s)
    dedupe = Dedupe(seen_key(settings.input_stream), args.dedupe_window_s) if args.dedupe_window_s > 0 else None
    producer = StreamProducer(redis, settings.input_stream, maxlen=args.maxlen, dedupe=dedupe)
    status = Status("push", enabled=not args.quiet)
    feed = Feed(producer, status)
    try:
        await producer.ensure_group(settings.group)
        if args.follow:
            await follow_files(args.files, feed, redis, stop, channel=args.channel)
        else:
            pipe = args.files[0]
            source = sys.stdin.buffer if str(pipe) == "-" else await asyncio.to_thread(open, pipe, "rb")
            await read_pipe(source, feed, stop, channel=args.channel, where=str(args.files[0]))
    finally:
        status.close()
        await redis.aclose()
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    if args.rate is not None and args.speed is not None:
        raise LivetopicError("give --rate or --speed, not both")
    pipes = [path for path in args.files if _is_pipe(path)]
    live = args.follow or bool(pipes)
    if pipes and (len(args.files) > 1 or args.follow):
        raise LivetopicError("a pipe ('-') is read on its own: give it alone, without --follow")
    if live and (args.rate or args.speed or args.limit):
        raise LivetopicError("--rate, --speed and --limit replay whole files; --follow and pipes push as lines come")
    if args.follow:
        args.files = [Path(os.path.abspath(path)) for path in args.files]  # a file's position is kept by its path
    settings = settings_from_args(args)
    with redis_for(settings) as url:
        return run_async((_push_live if live else _push_files)(settings, url, args))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("push", help="XADD comments from files, a pipe ('-') or growing files (--follow)",
                       description="Formats are told from the content: chat-downloader (JSON, JSONL, CSV), "
                                   "pytchat JSON, yt-dlp live_chat.json, livetopic JSONL/CSV/chat JSON, plain text.")
    p.add_argument("files", nargs="+", type=Path, help="files or directories; '-' reads standard input")
    p.add_argument("--follow", "-F", action="store_true",
                   help="keep reading the files as they grow (like tail -F), exactly once across restarts")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="comments per second")
    pace.add_argument("--speed", type=float, help="replay with the files' own timing, X times faster")
    p.add_argument("--channel", help="channel field for comments that have none")
    p.add_argument("--limit", type=int, help="push at most N comments")
    p.add_argument("--maxlen", type=int, help="approximate MAXLEN of the input stream")
    p.add_argument("--dedupe-window-s", type=float, default=3600.0,
                   help="--follow and pipes: skip a message id pushed within this many seconds (0: off)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or status line")
    add_settings_flags(p, (*REDIS_FLAGS, *STREAM_FLAGS))
    p.set_defaults(func=cmd_push)
