"""``livetopic demo``: embedded Redis, a small model (trained on the bundled sample when none exists),
a worker process, a replay of the bundled sample, a live table and a summary. No network needed."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import Field

from ..display import cell
from ..errors import LivetopicError
from ..inputs import Record, read_records
from ..model.repository import latest_version
from ..options import Flag, Options, add_command
from ..settings import Settings, StreamNames
from ..sources.replay import due_times, paced, speed_to_fit
from ..streams.client import connect
from ..streams.producer import StreamProducer
from ..streams.reading import follow
from .embedded import EmbeddedRedis
from .process import DashboardProcess, WorkerProcess

__all__ = ["DemoOptions", "Train", "register", "replay_schedule", "sample_games", "sample_path"]

HELP = "end-to-end demo on a bundled sample; no network, no server needed"

# Trains a model on the files and publishes it into the repository; returns the version. The CLI passes the
# trainer's (``trainer.train.train_model``): the tools do not import the trainer.
Train = Callable[..., int]


def sample_path() -> Path:
    """The bundled sample's first game, the one the demo replays."""
    return Path(str(resources.files("worker") / "data" / "sample_chat.jsonl"))


def sample_games() -> Path:
    """The bundled sample's games (``sample_chat.jsonl`` and ``games/``), the demo model's training data."""
    return Path(str(resources.files("worker") / "data"))


def _ensure_model(train: Train, repo: Path, data: Path, minutes: float, run_dir: Path, verbose: bool) -> None:
    if latest_version(repo) is not None:
        print(f"model: {repo}/{latest_version(repo)} (already there)")
        return
    print(f"model: none in {repo}; training a small one on the bundled sample (~{minutes:.0f} min on CPU)…", flush=True)
    trainer_log = logging.getLogger("trainer")
    level = trainer_log.level
    if not verbose:  # the training chatter (epochs, agreement, one-file warning) only with -v
        trainer_log.setLevel(logging.ERROR)
    try:
        version = train(
            [data],
            repo,
            preset="tiny",
            max_minutes=minutes,
            name="demo-topics",
            run_dir=str(run_dir),
            quiet=not verbose,
            # the demo needs no test-game scores, and a short dtype check leaves the minutes to training
            test_fraction=0.0,
            agreement_n=100,
        )
    finally:
        trainer_log.setLevel(level)
    print(f"model: published {repo}/{version} (training log in {run_dir})")


def replay_schedule(records: list[Record], duration_s: float, rate: float | None) -> tuple[list[float], str]:
    """When each comment is offered (seconds after the start) and how, in words: at ``rate`` per second when
    given, else the game's own timing compressed into about ``duration_s`` seconds (evenly over it when the
    comments carry no times)."""
    if rate:
        return due_times(records, rate=rate), f"at {rate:g}/s"
    speed = speed_to_fit(records, duration_s)
    if speed is None:
        rate = max(1, len(records) - 1) / duration_s
        return due_times(records, rate=rate), f"evenly over {duration_s:g}s (the comments carry no times)"
    return due_times(records, speed=speed), f"at the game's own pace, {speed:.0f}x faster"


async def _replay(url: str, records: list[Record], due: list[float], streams: StreamNames) -> tuple[list[float], float]:
    redis = connect(url)
    producer = StreamProducer(redis, streams.input)
    await producer.ensure_group(streams.group)
    by_id: dict[str, dict[str, str]] = {}
    latencies: list[float] = []
    started = time.monotonic()

    async def push() -> None:
        async for batch in paced(records, due):
            chunk = [r.fields for r in batch]
            for entry_id, fields in zip(await producer.add(chunk), chunk, strict=True):
                by_id[entry_id] = fields

    pusher = asyncio.create_task(push())
    last = "0-0"
    print(f"\n{'time':>7}  {'user':<12}  {'comment':<34}  topics")
    print("-" * 80)
    try:
        while len(latencies) < len(records):
            entries = await follow(redis, streams.output, last, block_ms=2000)
            if not entries and pusher.done() and time.monotonic() - started > 60 + (due[-1] if due else 0):
                raise LivetopicError(f"only {len(latencies)} of {len(records)} results arrived")
            if entries:
                last = entries[-1][0]
            for _entry_id, fields in entries:
                latencies.append(float(fields["latency_ms"]))
                src = by_id.get(fields["source_id"], {})
                labels = ", ".join(json.loads(fields["labels"])) or "-"
                print(
                    f"{src.get('ts', ''):>7}  {cell(src.get('user', ''), 12)}  "
                    f"{cell(src.get('text', ''), 34)}  {labels}",
                    flush=True,
                )
        await pusher
    finally:
        pusher.cancel()
        await redis.aclose()
    return latencies, time.monotonic() - started


class DemoOptions(Options):
    workdir: Path = Field(Path(".demo"), description="where the demo keeps Redis data, the model and logs")
    model_repo: Path | None = Field(
        None,
        description="use this model repository instead of training one (default: "
        "WORKDIR/models, trained there when empty)",
    )
    n: int | None = Field(None, ge=1, description="replay at most N comments of the sample (default: all)")
    duration: float = Field(
        60.0, gt=0, description="replay the game's own timing compressed into about this many seconds"
    )
    rate: float | None = Field(
        None, gt=0, description="offer a fixed N comments per second instead of the game's timing (--duration)"
    )
    train_minutes: float = Field(2.0, gt=0, description="training budget when no model exists")
    verbose: Annotated[bool, Flag(short="-v")] = Field(False, description="show the training progress and log")


def cmd_demo(options: DemoOptions, settings: Settings, train: Train) -> int:
    workdir = options.workdir.resolve()
    repo = options.model_repo.resolve() if options.model_repo else workdir / "models"
    sample = sample_path()
    _ensure_model(train, repo, sample_games(), options.train_minutes, workdir / "train-run", options.verbose)
    records = read_records([sample], channel="demo", limit=options.n)
    due, pace = replay_schedule(records, options.duration, options.rate)
    streams = settings.streams
    with EmbeddedRedis(workdir / "redis", appendonly=False) as server:
        print(f"redis: embedded redis-server at {server.url}")
        limitation = server.limitation()
        if limitation:
            print(f"redis: {limitation}")
        flags = ["--redis-url", server.url, *streams.flags()]
        # The worker inherits this environment: LIVETOPIC_* settings (device, dtype…) apply to it too.
        with (
            WorkerProcess(
                [*flags, "--model-repo", str(repo), "--group-start-id", "0", "--max-wait-ms", "20"],
                workdir / "worker.log",
                env=os.environ,
            ) as worker,
            DashboardProcess(flags, workdir / "dashboard.log", env=os.environ) as dashboard,
        ):
            worker.wait_ready(timeout_s=120)
            print(
                f"worker: ready (pid {worker.popen.pid}, metrics {worker.url('/metrics')} while the demo runs, "
                f"log {worker.log_path})"
            )
            dashboard.wait_ready(timeout_s=60)
            print(f"dashboard: {dashboard.url('/')} (topic heat per channel, live: open it in a browser)", flush=True)
            print(f"replay: {len(records)} comments of one game, {pace}", flush=True)
            latencies, elapsed = asyncio.run(_replay(server.url, records, due, streams))
            classified = worker.metric('livetopic_comments_total{outcome="classified"}')
            code = worker.stop(timeout_s=60)
            if sys.stdin.isatty():
                input(f"dashboard: still at {dashboard.url('/')}; press Enter to stop the demo ")
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    print("-" * 80)
    print(
        f"summary: {len(latencies)} comments classified in {elapsed:.1f}s "
        f"({len(latencies) / elapsed:.1f} comments/s, offered {pace})"
    )
    print(f"latency: p50 {pct(0.50):.0f} ms, p99 {pct(0.99):.0f} ms (entry id time → publish)")
    print(
        f"worker: stopped (exit code {code}) after counting {classified:.0f} classified; its metrics are gone "
        f"with it. To keep one running: livetopic worker --model-repo {repo}"
    )
    return 0 if len(latencies) == len(records) and code == 0 else 1


def register(sub: argparse._SubParsersAction, train: Train) -> None:
    add_command(sub, "demo", functools.partial(cmd_demo, train=train), options=DemoOptions, help=HELP)
