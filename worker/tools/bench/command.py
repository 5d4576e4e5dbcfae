"""The ``livetopic bench`` command: flags → :class:`~.records.BenchOptions` and the worker's settings → run →
JSON or table."""

from __future__ import annotations

import argparse
import json

from ...errors import ConfigError
from ...options import add_command
from ...settings import Settings
from .emulate import enter_emulation
from .records import BenchOptions
from .run import run_bench
from .table import render_table

__all__ = ["WORKER_SETTINGS", "cmd_bench", "register"]

HELP = "baseline vs worker throughput, latency and compute ceiling"

# what the bench's workers are given (the bench passes them on as flags), and where the bench's Redis is
WORKER_SETTINGS = (
    "redis_url",
    "device",
    "dtype",
    "backend",
    "max_batch_size",
    "max_batch_tokens",
    "max_wait_ms",
    "compile",
)


def cmd_bench(options: BenchOptions, settings: Settings) -> int:
    if settings.backend == "null":
        raise ConfigError("--backend null: give --preset null to measure the host path without a model")
    if options.emulate_cpu:
        enter_emulation(options.emulate_cpu, options.cache_dir)  # this command again, under the CPUID mask
    result = run_bench(options, settings).to_json()
    print(json.dumps(result, ensure_ascii=False) if options.as_json else render_table(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "bench", cmd_bench, options=BenchOptions, settings=WORKER_SETTINGS, help=HELP)
