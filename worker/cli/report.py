"""``livetopic report (--stream | FILE…) [--channel C] [--window 60s] --out report.html|report.png``: the
post-game view of a game's topic heat (see :mod:`worker.web.report`)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field

from ..errors import ConfigError
from ..options import REDIS_AND_STREAMS, Flag, Options, add_command
from ..settings import Settings
from .common import redis_for, run_async

__all__ = ["ReportOptions", "parse_window", "register"]

SETTINGS = (*REDIS_AND_STREAMS, "device", "dtype")  # --device and --dtype: for --model
HELP = "post-game report of topic heat: timeline, peaks, shares (PNG or HTML)"

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_window(value: object) -> float:
    """'60s', '2m', '1.5min', '1h' or '90' (seconds) → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*", str(value))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"not a window: {value!r} (e.g. 60s, 2m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2) or ""]


class ReportOptions(Options):
    files: Annotated[list[Path], Flag(positional=True, metavar="FILE")] = Field(
        [], description="chat files of one game (e.g. a tvl19_chat game)"
    )
    stream: bool = Field(False, description="report on the output stream instead of files")
    out: Annotated[list[Path], Flag(repeat=True, metavar="PATH")] = Field(
        [], description="report.html or report.png (repeatable)"
    )
    channel: str | None = Field(None, description="only this channel's comments")
    window: Annotated[float, BeforeValidator(parse_window)] = Field(
        60.0, description="rolling window: 60s, 2m, 1h… (default: 60s)"
    )
    scores_from_file: bool = Field(False, description="the teacher scores in the chat file (a label is on above 0.5)")
    model: Path | None = Field(
        None,
        description="score the chat file with this model (repository or version "
        "directory); with --scores-from-file both are drawn side by side",
    )
    model_version: int | None = Field(
        None, ge=1, description="this version of the --model repository (default: the newest)"
    )
    labels: str | None = Field(
        None,
        description="comma-separated teacher label columns (default: the model's, else every score column of the file)",
    )
    start: str = Field("-", description="first output entry id with --stream")
    end: str = Field("+", description="last output entry id with --stream")
    peaks: int = Field(3, ge=0, description="peaks per topic")
    top: int = Field(3, ge=0, description="top comments per peak")
    title: str | None = Field(None, description="the report's title (default: the game or stream)")
    font: Path | None = Field(None, description="a font file with Chinese glyphs for the PNG (default: found)")


async def _stream_timelines(settings: Settings, url: str, options: ReportOptions) -> tuple[str, list]:
    from ..streams.client import connect
    from ..streams.shards import ShardLayout
    from ..web.report.sources import fill_texts, run_from_stream
    from ..web.report.write import timelines_of

    layout = ShardLayout.of(settings)
    redis = connect(url, timeout_s=settings.redis_timeout_s, cluster=settings.redis_cluster)
    try:
        title, run = await run_from_stream(
            redis,
            settings.output_stream,
            channel=options.channel,
            start=options.start,
            end=options.end,
            shards=layout.all(settings.output_stream),
        )
        timelines = timelines_of([run], options.window, peaks=options.peaks, top=options.top)
        shown = [c for t in timelines for ps in t.peaks.values() for p in ps for c in p.top]
        await fill_texts(redis, layout.all(settings.input_stream), shown)
    finally:
        await redis.aclose()
    return title, timelines


def _file_timelines(options: ReportOptions, settings: Settings) -> tuple[str, list]:
    from ..web.report.sources import read_chat, runs_from_chat
    from ..web.report.write import timelines_of

    chat = read_chat(options.files, options.channel)
    model = None
    if options.model:
        from ..model.load import load_model

        model = load_model(options.model, options.model_version, device=settings.device, dtype=settings.dtype)
    labels = [x.strip() for x in options.labels.split(",") if x.strip()] if options.labels else None
    runs = runs_from_chat(chat, teacher=options.scores_from_file, model=model, labels=labels)
    title = chat.title + (f" · channel {options.channel}" if options.channel is not None else "")
    return title, timelines_of(runs, options.window, peaks=options.peaks, top=options.top)


def cmd_report(options: ReportOptions, settings: Settings) -> int:
    from ..web.report.write import check_outputs, write_report

    check_outputs(options.out)
    if options.stream == bool(options.files):
        raise ConfigError("give either --stream or chat FILEs")
    if options.stream:
        if options.scores_from_file or options.model:
            raise ConfigError(
                "--scores-from-file and --model score chat FILEs; --stream reports what the workers published"
            )
        with redis_for(settings, announce=False) as url:  # --redis-url, else the embedded server
            title, timelines = run_async(_stream_timelines(settings, url, options))
    else:
        title, timelines = _file_timelines(options, settings)
    write_report(options.out, options.title or title, timelines, font=options.font)
    for out in options.out:
        print(f"report: {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "report", cmd_report, options=ReportOptions, settings=SETTINGS, help=HELP)
