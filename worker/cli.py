"""The ``livetopic`` console command. Signal handlers live here, nowhere else."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

from .errors import LivetopicError
from .options import REDIS_FLAGS, STREAM_FLAGS, add_settings_flags, settings_from_args
from .settings import Settings

__all__ = ["main", "redis_for", "run_async"]

log = logging.getLogger("livetopic")


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a hub at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with contextlib.suppress(Exception):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


def run_async(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(coro)


@contextlib.contextmanager
def redis_for(settings: Settings, announce: bool = True) -> Iterator[str]:
    """The configured Redis URL, or an embedded redis-server for the duration of the block."""
    if settings.redis_url:
        yield settings.redis_url
        return
    from .embedded import EmbeddedRedis

    with EmbeddedRedis(settings.redis_data_dir) as server:
        if announce:
            print(f"embedded redis-server at {server.url} (data in {server.data_dir})", file=sys.stderr, flush=True)
        yield server.url


# --- worker ---------------------------------------------------------------------------------------
def _install_signals(stop: asyncio.Event, on_hup: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()

    def on_stop(signame: str) -> None:
        if stop.is_set():
            log.warning("second %s: exiting at once; unacked comments will be reclaimed by other workers", signame)
            os._exit(130)
        log.info("%s: stopping (drain within the grace period)", signame)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop, sig.name)
    loop.add_signal_handler(signal.SIGHUP, on_hup)


async def _serve(settings: Settings, url: str) -> int:
    from .service import Worker

    worker = Worker(settings, url)
    stop = asyncio.Event()
    _install_signals(stop, worker.poke_reload)
    await worker.run(stop)
    log.info("worker stopped")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .device import prefer_passive_openmp

    prefer_passive_openmp()  # before torch loads
    settings = settings_from_args(args)
    with redis_for(settings) as url:
        return run_async(_serve(settings, url))


# --- push / tail ----------------------------------------------------------------------------------
async def _push(settings: Settings, url: str, args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from .producer import StreamProducer, read_records
    from .streams import connect

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


async def _tail(settings: Settings, url: str, args: argparse.Namespace) -> int:
    from .streams import connect

    redis = connect(url, timeout_s=settings.redis_timeout_s)
    stream = settings.dead_letter_stream if args.dead else settings.output_stream
    last = "0-0" if args.from_start else "$"
    seen = 0
    try:
        while args.count is None or seen < args.count:
            reply: Any = await redis.xread({stream: last}, count=100, block=1000)
            for _name, entries in reply or []:
                for entry_id, raw in entries:
                    last = entry_id.decode()
                    fields = {k.decode(): v.decode(errors="replace") for k, v in raw.items()}
                    if args.json:
                        print(json.dumps({"id": last, **fields}, ensure_ascii=False), flush=True)
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
    settings = settings_from_args(args)
    if not settings.redis_url:
        raise LivetopicError("tail needs --redis-url (or LIVETOPIC_REDIS_URL): the server the worker uses")
    with contextlib.suppress(KeyboardInterrupt):
        return run_async(_tail(settings, settings.redis_url, args))
    return 0


# --- model init -----------------------------------------------------------------------------------
def cmd_model_init(args: argparse.Namespace) -> int:
    from .modelinit import init_version
    from .producer import read_records
    from .repository import PreprocessingSpec

    texts = [r.fields["text"] for r in read_records(args.vocab_from)] if args.vocab_from else []
    labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    version = init_version(Path(args.out), preset=args.preset, labels=labels, texts=texts, arch=args.arch,
                           multi_label=not args.single_label, name=args.name, max_length=args.max_length,
                           preprocessing=PreprocessingSpec(mode=args.preprocess), seed=args.seed)
    print(f"wrote {args.out}/{version} (untrained {args.arch}, preset {args.preset}, labels {labels})")
    return 0


# --- parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livetopic", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("worker", help="classify comments from the input stream (the service)")
    add_settings_flags(p)
    p.set_defaults(func=cmd_worker)

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

    p = sub.add_parser("tail", help="print results as they arrive")
    p.add_argument("--from-start", action="store_true", help="from the start of the stream, not only new ones")
    p.add_argument("--count", type=int, help="stop after N entries")
    p.add_argument("--dead", action="store_true", help="tail the dead-letter stream instead")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_settings_flags(p, (*REDIS_FLAGS, *STREAM_FLAGS))
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser("model", help="model repository tools")
    msub = p.add_subparsers(dest="model_command", required=True)
    q = msub.add_parser("init", help="write an untrained version (random weights, character vocabulary)")
    q.add_argument("--preset", choices=["tiny", "small", "bert-base-chinese"], default="tiny")
    q.add_argument("--arch", choices=["bert", "distilbert", "roberta"], default="bert")
    q.add_argument("--labels", default="Cheer,Game,Broadcast,Chat", help="comma-separated label names")
    q.add_argument("--single-label", action="store_true", help="softmax over labels instead of sigmoid")
    q.add_argument("--vocab-from", nargs="*", type=Path, default=[], help="texts for the vocabulary (push formats)")
    q.add_argument("--out", required=True, type=Path, help="model repository")
    q.add_argument("--name", default="livetopic")
    q.add_argument("--max-length", type=int, default=64)
    q.add_argument("--preprocess", choices=["raw", "remove_emoji", "demojize", "remove_punct"], default="raw")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=cmd_model_init)

    from trainer import commands

    from . import bench, demo

    demo.register(sub)
    bench.register(sub)
    commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = os.environ.get("LIVETOPIC_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _quiet_libraries()
    try:
        return int(args.func(args))
    except LivetopicError as exc:
        print(f"livetopic: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
