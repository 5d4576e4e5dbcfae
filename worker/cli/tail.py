"""``livetopic tail``: print results (or dead letters) as they arrive."""

from __future__ import annotations

import argparse
import json

from ..options import REDIS_FLAGS, STREAM_FLAGS, add_settings_flags
from ..settings import Settings
from .common import run_on_redis

__all__ = ["register"]


async def _tail(settings: Settings, url: str, args: argparse.Namespace) -> int:
    from ..streams.client import connect
    from ..streams.reading import follow

    redis = connect(url, timeout_s=settings.redis_timeout_s)
    stream = settings.dead_letter_stream if args.dead else settings.output_stream
    last = "0-0" if args.from_start else "$"
    seen = 0
    try:
        while args.count is None or seen < args.count:
            for entry_id, fields in await follow(redis, stream, last):
                last = entry_id
                if args.json:
                    print(json.dumps({"id": entry_id, **fields}, ensure_ascii=False), flush=True)
                else:
                    what = fields.get("error") if args.dead else fields.get("labels")
                    print(f"{fields.get('source_id', '?'):>20}  {what}  {fields.get('model', '')}  "
                          f"{fields.get('latency_ms', '')}ms", flush=True)
                seen += 1
                if args.count is not None and seen >= args.count:
                    return 0
    finally:
        await redis.aclose()
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    return run_on_redis(args, "tail", _tail)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tail", help="print results as they arrive")
    p.add_argument("--from-start", action="store_true", help="from the start of the stream, not only new ones")
    p.add_argument("--count", type=int, help="stop after N entries")
    p.add_argument("--dead", action="store_true", help="tail the dead-letter stream instead")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_settings_flags(p, (*REDIS_FLAGS, *STREAM_FLAGS))
    p.set_defaults(func=cmd_tail)
