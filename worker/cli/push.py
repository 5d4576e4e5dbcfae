"""``livetopic push``: put comments into the input stream, exactly once: from files (replayed at once, at a
``--rate`` or with their own timing), from a pipe (``-``: each line as it arrives), or from files still being
written (``--follow``: like ``tail -F``, resuming where the last run stopped)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from ..display import bars_disabled
from ..errors import LivetopicError
from ..inputs.records import Reading
from ..inputs.shapes import FORMATS
from ..options import Flag
from ..settings import Settings
from .common import redis_for, run_async, stop_on_signals
from .producing import ProducerOptions, live_feed, producer, register_producer

__all__ = ["PushOptions", "register"]

HELP = "XADD comments from files, a pipe ('-') or growing files (--follow)"
ABOUT = (
    "Formats are told from the content: chat-downloader (JSON, JSONL, CSV), pytchat JSON, YouTube actions (yt-dlp "
    "live_chat.json, pytchat JsonfileArchiver), livetopic JSONL/CSV/chat JSON, plain text (see docs/INPUTS.md). "
    "Deletions and bans are pushed as retractions. Interrupted (Ctrl-C, SIGTERM), a push of files finishes the "
    "chunk in hand, says how many it sent and exits 130 (143 on SIGTERM); run again, it sends the rest. Files that "
    "hold nothing are a warning; when nothing at all is left to push it exits 1."
)
NOTHING_TO_PUSH = 1  # the files were all empty (grep's "nothing found")


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


class PushOptions(ProducerOptions):
    files: Annotated[list[Path], Flag(positional=True, metavar="FILE")] = Field(
        description="files or directories; '-' reads standard input"
    )
    follow: Annotated[bool, Flag(short="-F")] = Field(
        False, description="keep reading the files as they grow (like tail -F), exactly once across restarts"
    )
    rate: Annotated[float | None, Flag(exclusive="pace")] = Field(None, gt=0, description="comments per second")
    speed: Annotated[float | None, Flag(exclusive="pace")] = Field(
        None, gt=0, description="replay with the files' own timing, X times faster"
    )
    limit: int | None = Field(None, ge=1, description="push at most N comments")
    progress: bool = Field(
        False, description="a progress bar even where stderr is not a terminal (by default only on one: not in logs)"
    )
    restart: bool = Field(
        False,
        description="push all comments of the files, even if an earlier push of them "
        "stopped midway (by default a push run again after a failure sends only what had not "
        "landed)",
    )
    format: Annotated[str, Flag(choices=FORMATS)] = Field(
        "auto",
        description="the input's shape: auto (told from the content), a tool's name (its items only), livetopic, "
        "or text (each line one comment, even where it looks like another tool's log)",
    )


async def _push_files(settings: Settings, url: str, options: PushOptions, reading: Reading) -> int:
    """Push the files' comments; chunk by chunk the producer records how many landed (with the chunk), so a push
    that failed midway, or was interrupted, and is run again sends only the rest; a complete push clears its
    record. SIGINT or SIGTERM ends the push after the chunk in hand, saying what was sent (exit 130, or 143)."""
    from tqdm import tqdm

    from ..inputs import Record, summary_of_skipped, summary_of_unreadable
    from ..sources.replay import due_times, paced
    from ..streams.keys import push_key
    from ..streams.producer import Checkpoint

    records = reading.entries  # comments and retractions, in order
    key = push_key(settings.input_stream, _identity(records))
    stop = asyncio.Event()
    signals = stop_on_signals(stop, None, "what was not yet confirmed is sent again, once, by the next run")
    unit = "entries (comments and retractions)" if reading.retractions else "comments"
    async with producer(settings, url, options) as made:
        done = 0 if options.restart else int((await made.checkpoint(key)).get("pushed", 0))
        if done:
            print(
                f"resuming: an earlier push of these files stopped after {done} of {len(records)} {unit}; "
                f"pushing the other {len(records) - done} (--restart pushes them all again)",
                file=sys.stderr,
            )
        started, pushed = time.monotonic(), done
        todo = records[done:]
        bars = bars_disabled(options.quiet, options.progress)
        with tqdm(total=len(records), initial=done, unit="comment", disable=bars, file=sys.stderr) as bar:
            async for batch in paced(todo, due_times(todo, rate=options.rate, speed=options.speed), stop=stop):
                pushed += len(batch)
                await made.add([r.fields for r in batch], Checkpoint(key, {"pushed": str(pushed)}))
                bar.update(len(batch))
        if signals.received is not None:
            print(
                f"livetopic: interrupted: pushed {pushed} of {len(records)} {unit}; run again to send the rest",
                file=sys.stderr,
            )
            return 128 + signal.Signals[signals.received].value
        await made.clear(key)
    elapsed = time.monotonic() - started
    comments = sum(1 for r in todo if isinstance(r, Record))
    retractions = f" and {len(todo) - comments} retractions" if len(todo) > comments else ""
    print(f"pushed {comments} comments{retractions} to {settings.input_stream} in {elapsed:.2f}s", file=sys.stderr)
    for summary in (summary_of_skipped(reading.skipped), summary_of_unreadable(reading.unreadable)):
        if summary:
            print(summary, file=sys.stderr)
    return 0


def _read_files(options: PushOptions) -> Reading | None:
    """What the files hold, read before Redis is touched; an empty file is a warning (None: nothing at all)."""
    from ..inputs import read_inputs

    reading = read_inputs(options.files, channel=options.channel, limit=options.limit, fmt=options.format)
    if not reading.entries and reading.empty:
        named = ", ".join(map(str, reading.empty[:3])) + (" …" if len(reading.empty) > 3 else "")
        print(
            f"livetopic: warning: nothing to push: {named} {'is' if len(reading.empty) == 1 else 'are'} empty",
            file=sys.stderr,
        )
        return None
    for path in reading.empty:
        print(f"livetopic: warning: {path} is empty", file=sys.stderr)
    return reading


async def _push_live(settings: Settings, url: str, options: PushOptions) -> int:
    from ..sources.feed import follow_files, read_pipe

    async with live_feed(settings, url, options, "push") as live:
        if options.follow:  # a followed file's position is kept by its absolute path
            await follow_files(
                [path.absolute() for path in options.files],
                live.feed,
                live.feed.producer.redis,
                live.stop,
                channel=options.channel,
                fmt=options.format,
            )
        else:
            pipe = options.files[0]
            stdin = str(pipe) == "-"
            source = sys.stdin.buffer if stdin else await asyncio.to_thread(open, pipe, "rb")
            where = "<stdin>" if stdin else str(pipe)
            await read_pipe(source, live.feed, live.stop, channel=options.channel, where=where, fmt=options.format)
    return 0


def cmd_push(options: PushOptions, settings: Settings) -> int:
    pipes = [path for path in options.files if _is_pipe(path)]
    live = options.follow or bool(pipes)
    if pipes and (len(options.files) > 1 or options.follow):
        raise LivetopicError("a pipe ('-') is read on its own: give it alone, without --follow")
    if live and (options.rate or options.speed or options.limit):
        raise LivetopicError("--rate, --speed and --limit replay whole files; --follow and pipes push as lines come")
    if live:
        with redis_for(settings) as url:
            return run_async(_push_live(settings, url, options))
    reading = _read_files(options)
    if reading is None:
        return NOTHING_TO_PUSH
    with redis_for(settings) as url:
        return run_async(_push_files(settings, url, options, reading))


def register(sub: argparse._SubParsersAction) -> None:
    register_producer(sub, "push", cmd_push, PushOptions, help=HELP, description=ABOUT)
