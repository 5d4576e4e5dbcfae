"""``livetopic push``: put comments into the input stream, exactly once: from files (replayed at once, at a
``--rate`` or with their own timing), from a pipe (``-``: each line as it arrives), or from files still being
written (``--follow``: like ``tail -F``, resuming where the last run stopped)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import LivetopicError
from ..inputs.shapes import FORMATS
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


def _identity(records: list[Any]) -> str:
    """What a push sends, as one digest: the same files (and --limit, --channel) give the same checkpoint."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record.fields, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


async def _push_files(settings: Settings, url: str, args: argparse.Namespace) -> int:
    """Push the files' comments; chunk by chunk the producer records how many landed (with the chunk), so a push
    that failed midway and is run again sends only the rest; a complete push clears its record."""
    from tqdm import tqdm

    from ..inputs import Record, read_inputs, summary_of_skipped, summary_of_unreadable
    from ..sources.replay import due_times, paced
    from ..streams.client import connect
    from ..streams.keys import push_key
    from ..streams.producer import Checkpoint, StreamProducer

    reading = read_inputs(args.files, channel=args.channel, limit=args.limit, fmt=args.format)
    records = reading.entries  # comments and retractions, in order
    redis = connect(url, timeout_s=settings.redis_timeout_s)
    producer = StreamProducer(redis, settings.input_stream, maxlen=args.maxlen, max_retry_s=args.retry_s)
    key = push_key(settings.input_stream, _identity(records))
    try:
        await producer.ensure_group(settings.group, settings.group_start_id)
        done = 0 if args.restart else int((await producer.checkpoint(key)).get("pushed", 0))
        unit = "entries (comments and retractions)" if reading.retractions else "comments"
        if done:
            print(
                f"resuming: an earlier push of these files stopped after {done} of {len(records)} {unit}; "
                f"pushing the other {len(records) - done} (--restart pushes them all again)",
                file=sys.stderr,
            )
        started, pushed = time.monotonic(), done
        todo = records[done:]
        with tqdm(total=len(records), initial=done, unit="comment", disable=args.quiet, file=sys.stderr) as bar:
            async for batch in paced(todo, due_times(todo, rate=args.rate, speed=args.speed)):
                pushed += len(batch)
                await producer.add([r.fields for r in batch], Checkpoint(key, {"pushed": str(pushed)}))
                bar.update(len(batch))
        await producer.clear(key)
        elapsed = time.monotonic() - started
        comments = sum(1 for r in todo if isinstance(r, Record))
        print(
            f"pushed {comments} comments and {len(todo) - comments} retractions to {settings.input_stream} "
            f"in {elapsed:.2f}s",
            file=sys.stderr,
        )
        for summary in (summary_of_skipped(reading.skipped), summary_of_unreadable(reading.unreadable)):
            if summary:
                print(summary, file=sys.stderr)
    finally:
        await redis.aclose()
    return 0


async def _push_live(settings: Settings, url: str, args: argparse.Namespace) -> int:
    from ..sources.feed import Feed, follow_files, read_pipe
    from ..sources.status import Status
    from ..streams.client import connect
    from ..streams.keys import seen_key
    from ..streams.producer import Dedupe, StreamProducer

    stop = asyncio.Event()
    stop_on_signals(
        stop,
        "stopping push (the chunk in hand is finished first)",
        "what was not yet confirmed is sent again, once, by the next run",
    )
    redis = connect(url, timeout_s=settings.redis_timeout_s)
    dedupe = Dedupe(seen_key(settings.input_stream), args.dedupe_window_s) if args.dedupe_window_s > 0 else None
    producer = StreamProducer(redis, settings.input_stream, maxlen=args.maxlen, dedupe=dedupe, max_retry_s=args.retry_s)
    status = Status("push", enabled=not args.quiet)
    feed = Feed(producer, status)
    try:
        await producer.ensure_group(settings.group, settings.group_start_id)
        if args.follow:  # a followed file's position is kept by its absolute path
            paths = [path.absolute() for path in args.files]
            await follow_files(paths, feed, redis, stop, channel=args.channel, fmt=args.format)
        else:
            pipe = args.files[0]
            stdin = str(pipe) == "-"
            source = sys.stdin.buffer if stdin else await asyncio.to_thread(open, pipe, "rb")
            where = "<stdin>" if stdin else str(pipe)
            await read_pipe(source, feed, stop, channel=args.channel, where=where, fmt=args.format)
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
    settings = settings_from_args(args)
    with redis_for(settings) as url:
        return run_async((_push_live if live else _push_files)(settings, url, args))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "push",
        help="XADD comments from files, a pipe ('-') or growing files (--follow)",
        description="Formats are told from the content: chat-downloader (JSON, JSONL, CSV), "
        "pytchat JSON, YouTube actions (yt-dlp live_chat.json, pytchat JsonfileArchiver), livetopic "
        "JSONL/CSV/chat JSON, plain text (see docs/INPUTS.md). Deletions and bans are pushed as retractions.",
    )
    p.add_argument("files", nargs="+", type=Path, help="files or directories; '-' reads standard input")
    p.add_argument(
        "--follow",
        "-F",
        action="store_true",
        help="keep reading the files as they grow (like tail -F), exactly once across restarts",
    )
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="comments per second")
    pace.add_argument("--speed", type=float, help="replay with the files' own timing, X times faster")
    p.add_argument("--channel", help="channel field for comments that have none")
    p.add_argument("--limit", type=int, help="push at most N comments")
    p.add_argument("--maxlen", type=int, help="approximate MAXLEN of the input stream")
    p.add_argument(
        "--dedupe-window-s",
        type=float,
        default=3600.0,
        help="--follow and pipes: skip a message id pushed within this many seconds (0: off)",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="push all comments of the files, even if an earlier push of them stopped midway (by "
        "default a push run again after a failure sends only what had not landed)",
    )
    p.add_argument(
        "--retry-s",
        type=float,
        default=120.0,
        help="ride out Redis faults (restarts, out of memory…) this long before giving up (default 120)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or status line")
    # issue 22: the shape the input must have (auto: told from the content; text: each line one comment)
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="the input's shape: auto (told from the content, the default), a tool's name (its items only), "
        "livetopic, or text (each line one comment, even where it looks like another tool's log)",
    )
    add_settings_flags(p, (*REDIS_FLAGS, *STREAM_FLAGS))
    p.set_defaults(func=cmd_push)
