"""``livetopic push``: put comments from files into the input stream, exactly once."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ..errors import LivetopicError
from ..options import REDIS_FLAGS, STREAM_FLAGS, add_settings_flags, settings_from_args
from ..settings import Settings
from .common import redis_for, run_async

__all__ = ["register"]


async def _push(settings: Settings, url: str, args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from ..inputs import read_records
    from ..streams.client import connect
    from ..streams.producer import StreamProducer

    records = read_records(args.files, channel=args.channel, limit=args.limit)
    redis = connect(url, timeout_s=settings.redis_timeout_s)
    producer = StreamProducer(redis, settings.input_stream, maxlen=args.maxlen)
    try:
        await producer.ensure_group(settings.group)
        chunk_size = 500 if not (args.rate or args.speed) else max(1, min(100, int((args.rate or 100) / 20)))
        started = time.monotonic()
        base = next((r.offset_s for r in records if r.offset_s is not None), 0.0)
        with tqdm(total=len(records), unit="comment", disable=args.quiet, file=sys.stderr) as bar:
            for start in range(0, len(records), chunk_size):
                chunk = records[start : start + chunk_size]
                if args.rate:
                    due = start / args.rate
                elif args.speed and chunk[0].offset_s is not None:
                    due = (chunk[0].offset_s - base) / args.speed
                else:
                    due = 0.0
                delay = due - (time.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
                await producer.add([r.fields for r in chunk])
                bar.update(len(chunk))
        elapsed = time.monotonic() - started
        print(f"pushed {len(records)} comments to {settings.input_stream} in {elapsed:.2f}s", file=sys.stderr)
    finally:
        await redis.aclose()
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    if args.rate is not None and args.speed is not None:
        raise LivetopicError("give --rate or --speed, not both")
    settings = settings_from_args(args)
    with redis_for(settings) as url:
        return run_async(_push(settings, url, args))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("push", help="XADD comments from files (JSONL, CSV, text, chat JSON)")
    p.add_argument("files", nargs="+", type=Path)
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="comments per second")
    pace.add_argument("--speed", type=float, help="replay with the original timing, X times faster")
    p.add_argument("--channel", help="channel field for comments that have none")
    p.add_argument("--limit", type=int, help="push at most N comments")
    p.add_argument("--maxlen", type=int, help="approximate MAXLEN of the input stream")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_settings_flags(p, (*REDIS_FLAGS, *STREAM_FLAGS))
    p.set_defaults(func=cmd_push)
