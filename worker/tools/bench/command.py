"""The ``livetopic bench`` command: flags → :class:`~.records.BenchOptions` → run → JSON or table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...errors import LivetopicError
from ...model.presets import PRESETS
from ...settings import BACKEND_CHOICES, DTYPE_CHOICES
from .records import BenchOptions
from .run import run_bench
from .steps import NULL
from .table import render_table

__all__ = ["cmd_bench", "options_from_args", "register"]


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """Checked options (the default model is the bert-base-chinese preset)."""
    if args.n < 1 or args.baseline_n < 1 or args.agreement_n < 0 or (args.workers is not None and args.workers < 1):
        raise LivetopicError("--n, --baseline-n and --workers must be ≥ 1, --agreement-n ≥ 0")
    if args.check_agreement and args.agreement_n == 0:
        raise LivetopicError("--check-agreement needs --agreement-n ≥ 1")
    preset = args.preset if args.model is not None or args.preset is not None else "bert-base-chinese"
    return BenchOptions(
        texts=list(args.texts), model=args.model, preset=preset, n=args.n, device=args.device, dtype=args.dtype,
        backend=args.backend,
        redis_url=args.redis_url, baseline_n=args.baseline_n, agreement_n=args.agreement_n,
        check_agreement=args.check_agreement, also_dtype=tuple(args.also_dtype or ()), warmup_n=args.warmup_n,
        half_load_seconds=args.half_load_seconds, threads=args.threads, workers=args.workers,
        max_batch_size=args.max_batch_size, max_batch_tokens=args.max_batch_tokens, max_wait_ms=args.max_wait_ms,
        compile=args.compile, cache_dir=args.cache_dir, seed=args.seed)


def cmd_bench(args: argparse.Namespace) -> int:
    result = run_bench(options_from_args(args)).to_json()
    print(json.dumps(result, ensure_ascii=False) if args.json else render_table(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="baseline vs worker throughput, latency and compute ceiling")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="model repository (REPO or REPO/N) or Hugging Face directory")
    source.add_argument("--preset", choices=[*PRESETS, NULL],
                        help="an untrained model of this shape, built once into --cache-dir (default: "
                             "bert-base-chinese when no --model); null: no model, one worker with a stand-in that "
                             "returns fixed scores instantly, to measure the host path (Redis, parsing, tokenising, "
                             "batching, publishing)")
    p.add_argument("--texts", nargs="+", type=Path, required=True, help="comments (files or directories)")
    p.add_argument("--n", type=int, default=2000, help="comments per worker run (default: 2000)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto", help="the worker's dtype (default: auto)")
    p.add_argument("--backend", choices=[b for b in BACKEND_CHOICES if b != NULL], default="auto",
                   help="the worker's backend (default: auto)")
    p.add_argument("--redis-url", help="a Redis server to use (fresh stream names; default: an embedded one)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--baseline-n", type=int, default=200,
                   help="time the baseline on min(N, this) comments and extrapolate its rate (default: 200)")
    p.add_argument("--agreement-n", type=int, default=1000,
                   help="comments for the label-agreement check against float32; 0 skips it (default: 1000)")
    p.add_argument("--check-agreement", action="store_true", help="only the label-agreement check")
    p.add_argument("--also-dtype", action="append", metavar="DTYPE",
                   choices=[*DTYPE_CHOICES[1:],
                            *(f"{b}:{d}" for b in ("torch", "onnxruntime") for d in DTYPE_CHOICES[1:])],
                   help="also measure this dtype's (or backend:dtype's) label agreement and in-process speed "
                        "(repeatable; every engine the CPU offers is measured anyway)")
    p.add_argument("--warmup-n", type=int, default=256, help="comments through the worker before timing")
    p.add_argument("--half-load-seconds", type=float, default=20.0,
                   help="length of the half-load phase, at most N comments (default: 20)")
    p.add_argument("--threads", type=int, help="torch intra-op threads everywhere (default: torch's, all cores)")
    p.add_argument("--workers", type=int,
                   help="worker processes in the consumer group, each with --threads or its share of the cores "
                        "(default: on CPU one per core, one thread each; on CUDA one)")
    p.add_argument("--max-batch-size", type=int, help="worker setting (default: the worker's)")
    p.add_argument("--max-batch-tokens", type=int, help="worker setting (default: the worker's)")
    p.add_argument("--max-wait-ms", type=float, help="worker setting (default: the worker's)")
    p.add_argument("--compile", action="store_true", help="torch.compile the worker's model")
    p.add_argument("--cache-dir", type=Path, default=Path(".bench"), help="preset models and run logs")
    p.add_argument("--seed", type=int, default=0, help="which comments are drawn")
    p.set_defaults(func=cmd_bench)
