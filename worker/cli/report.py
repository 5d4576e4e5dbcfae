"""``livetopic report (--stream | FILE…) [--channel C] [--window 60s] --out report.html|report.png``: the
post-game view of a game's topic heat (see :mod:`worker.web.report`)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..errors import ConfigError
from ..options import REDIS_FLAGS, STREAM_FLAGS, add_settings_flags, settings_from_args
from ..settings import DTYPE_CHOICES, Settings
from .common import redis_for, run_async

__all__ = ["parse_window", "register"]

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_window(value: str) -> float:
    """'60s', '2m', '1.5min', '1h' or '90' (seconds) → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*", value)
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"not a window: {value!r} (e.g. 60s, 2m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2) or ""]


async def _stream_timelines(settings: Settings, url: str, args: argparse.Namespace) -> tuple[str, list]:
    from ..streams.client import connect
    from ..web.report.sources import fill_texts, run_from_stream
    from ..web.report.write import timelines_of

    redis = connect(url, timeout_s=settings.redis_timeout_s)
    try:
        title, run = await run_from_stream(redis, settings.output_stream, channel=args.channel, start=args.start,
                                           end=args.end)
        timelines = timelines_of([run], args.window, peaks=args.peaks, top=args.top)
        shown = [c for t in timelines for ps in t.peaks.values() for p in ps for c in p.top]
        await fill_texts(redis, settings.input_stream, shown)
    finally:
        await redis.aclose()
    return title, timelines


def _file_timelines(args: argparse.Namespace) -> tuple[str, list]:
    from ..web.report.sources import read_chat, runs_from_chat
    from ..web.report.write import timelines_of

    chat = read_chat(args.files, args.channel)
    model = None
    if args.model:
        from ..model.load import load_model

        model = load_model(args.model, args.model_version, device=args.device, dtype=args.dtype)
    labels = [x.strip() for x in args.labels.split(",") if x.strip()] if args.labels else None
    runs = runs_from_chat(chat, teacher=args.scores_from_file, model=model, labels=labels)
    title = chat.title + (f" · channel {args.channel}" if args.channel is not None else "")
    return title, timelines_of(runs, args.window, peaks=args.peaks, top=args.top)


def cmd_report(args: argparse.Namespace) -> int:
    from ..web.report.write import check_outputs, write_report

    outs = [Path(p) for p in args.out or []]
    check_outputs(outs)
    if args.stream == bool(args.files):
        raise ConfigError("give either --stream or chat FILEs")
    if args.stream:
        if args.scores_from_file or args.model:
            raise ConfigError("--scores-from-file and --model score chat FILEs; --stream reports what the workers "
                              "published")
        settings = settings_from_args(args)
        with redis_for(settings, announce=False) as url:  # --redis-url, else the embedded server
            title, timelines = run_async(_stream_timelines(settings, url, args))
    else:
        title, timelines = _file_timelines(args)
    write_report(outs, args.title or title, timelines, font=args.font)
    for out in outs:
        print(f"report: {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="post-game report of topic heat: timeline, peaks, shares (PNG or HTML)")
    p.add_argument("files", nargs="*", metavar="FILE", help="chat files of one game (e.g. a tvl19_chat game)")
    p.add_argument("--stream", action="store_true", help="report on the output stream instead of files")
    p.add_argument("--out", action="append", metavar="PATH", help="report.html or report.png (repeatable)")
    p.add_argument("--channel", help="only this channel's comments")
    p.add_argument("--window", type=parse_window, default=60.0, help="rolling window (default: 60s)")
    p.add_argument("--scores-from-file", action="store_true",
                   help="the teacher scores in the chat file (a label is on above 0.5)")
    p.add_argument("--model", type=Path, help="score the chat file with this model (repository or version "
                   "directory); with --scores-from-file both are drawn side by side")
    p.add_argument("--model-version", type=int, help="this version of the --model repository")
    p.add_argument("--labels", help="comma-separated teacher label columns (default: the model's, else every "
                   "score column of the file)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device for --model")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto", help="dtype for --model")
    p.add_argument("--start", default="-", help="first output entry id with --stream (default: -)")
    p.add_argument("--end", default="+", help="last output entry id with --stream (default: +)")
    p.add_argument("--peaks", type=int, default=3, help="peaks per topic (default: 3)")
    p.add_argument("--top", type=int, default=3, help="top comments per peak (default: 3)")
    p.add_argument("--title", help="the report's title (default: the game or stream)")
    p.add_argument("--font", type=Path, help="a font file with Chinese glyphs for the PNG (default: found)")
    add_settings_flags(p, (*REDIS_FLAGS, *STREAM_FLAGS))
    p.set_defaults(func=cmd_report)
