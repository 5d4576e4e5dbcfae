"""``livetopic bench``: how much faster the worker is than the model card's one-comment-at-a-time code,
and how close it gets to the device's compute ceiling, on the same model and the same texts in one run.

Steps: (1) label agreement of the worker's dtype with float32, in-process (and others with ``--also-dtype``);
(2) baseline: the reference usage code, one comment at a time, float32; (3) the real worker
(``python -m worker worker``) against a real Redis, saturated; (4) the worker at half the saturated rate;
(5) the ceiling: the measured matrix-multiply rate in the worker's dtype over the model's FLOPs per comment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .benchload import CpuMeter
from .benchsteps import Baseline, ModelRef, draw, load_texts, prepare_model, say, token_lengths
from .errors import LivetopicError
from .settings import DTYPE_CHOICES, Settings

__all__ = ["REQUIRED_KEYS", "register", "run_bench", "worker_layout"]

REQUIRED_KEYS = ("baseline_comments_per_s", "worker_comments_per_s", "speedup", "latency_ms_p50", "latency_ms_p99",
                 "half_load_latency_ms_p99", "compute_bound_comments_per_s", "fraction_of_ceiling", "device", "dtype",
                 "n")
_BUSY_CORES = 0.25  # other processes' CPU (cores) above which the table warns


# --- the worker under load ------------------------------------------------------------------------
def _worker_flags(args: argparse.Namespace, ref: ModelRef, url: str, names: Any) -> list[str]:
    flags = ["--redis-url", url, "--model-repo", str(ref.repo), "--input-stream", names.input,
             "--output-stream", names.output, "--dead-letter-stream", names.dead, "--group", names.group,
             "--group-start-id", "0", "--device", args.resolved_device,
             "--dtype", args.resolved_dtype, "--log-level", "WARNING"]
    if ref.version is not None:
        flags += ["--model-version", str(ref.version)]
    for name in ("max_batch_size", "max_batch_tokens", "max_wait_ms"):
        value = getattr(args, name)
        if value is not None:
            flags += ["--" + name.replace("_", "-"), str(value)]
    flags += ["--torch-threads", str(args.worker_threads)]
    if args.compile:
        flags.append("--compile")
    return flags


def worker_layout(device: str, workers: int | None, threads: int | None) -> tuple[int, int]:
    """(worker processes, torch threads each). On CPU by default one single-threaded worker per core: one
    thread per process needs no OpenMP hand-offs between cores, which on a 2-core AVX512-VNNI machine took
    int8 from 117 comments/s (one worker, 2 threads) to 176 (two workers, 1 thread each). On CUDA one worker.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if workers is None:
        workers = 1 if device == "cuda" else max(1, cores // (threads or 1))
    return workers, threads or max(1, cores // workers)


def _metrics(workers: Any) -> dict[str, float]:
    """The workers' /metrics samples, summed over the workers."""
    total: dict[str, float] = {}
    for worker in workers:
        for name, value in worker.metrics().items():
            total[name] = total.get(name, 0.0) + value
    return total


def _batch_stats(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = delta("livetopic_batch_size_count")
    if batches <= 0:
        return {}
    stats = {"mean_batch_size": delta("livetopic_batch_size_sum") / batches}
    runs = delta("livetopic_inference_seconds_count")
    if runs > 0:
        stats["mean_inference_ms"] = 1000 * delta("livetopic_inference_seconds_sum") / runs
    padded = delta("livetopic_padded_tokens_total")
    if padded > 0:
        stats["padding_fill"] = delta("livetopic_batch_tokens_sum") / padded
    return stats


def run_worker_phases(args: argparse.Namespace, ref: ModelRef, texts: list[str], warm: list[str],
                      workdir: Path) -> dict[str, Any]:
    from .benchload import Phase, StreamNames, delete_streams, offer, percentiles
    from .embedded import EmbeddedRedis
    from .process import WorkerProcess

    names = StreamNames.fresh()
    server = None
    if args.redis_url:
        url = args.redis_url
    else:
        server = EmbeddedRedis(workdir / "redis", appendonly=False).start()
        url = server.url
    try:
        flags = _worker_flags(args, ref, url, names)
        with contextlib.ExitStack() as stack:
            workers = [stack.enter_context(WorkerProcess([*flags, "--consumer", f"bench-{i}"],
                                                         workdir / f"worker-{i}.log", threads=args.worker_threads))
                       for i in range(args.workers)]
            for worker in workers:
                worker.wait_ready()
            say(f"{len(workers)} worker process(es) ready, {args.worker_threads} torch thread(s) each; warm-up "
                f"with {len(warm)} comments")
            asyncio.run(offer(url, names, warm, workers))
            pids = {p.pid for p in [*(w.proc for w in workers), server.process if server else None] if p is not None}

            def measured(phase_texts: list[str], rate: float | None = None) -> tuple[Phase, dict[str, float], float]:
                """The phase, the workers' batch statistics over it, other processes' CPU meanwhile."""
                meter = CpuMeter(pids).start()
                before = _metrics(workers)
                phase = asyncio.run(offer(url, names, phase_texts, workers, rate=rate))
                return phase, _batch_stats(before, _metrics(workers)), meter.stop()

            say(f"saturation: {len(texts)} comments pushed at once")
            sat, stats, other_cores = measured(texts)
            rate = sat.comments_per_s / 2
            half_n = min(len(texts), max(50, int(rate * args.half_load_seconds)))
            say(f"half load: {half_n} comments offered at {rate:.1f}/s")
            half, half_stats, other_half = measured(texts[:half_n], rate)
        if args.redis_url:
            asyncio.run(delete_streams(url, names))
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(workdir / "redis", ignore_errors=True)
    p, hp = percentiles(sat.latencies_ms), percentiles(half.latencies_ms)
    return {"worker_comments_per_s": sat.comments_per_s, "worker_seconds": sat.seconds,
            "latency_ms_p50": p["50"], "latency_ms_p95": p["95"], "latency_ms_p99": p["99"],
            "dead_lettered": sat.dead + half.dead, "other_cpu_cores_worker": other_cores,
            "half_load_rate": rate, "half_load_n": half_n, "other_cpu_cores_half_load": other_half,
            "half_load_comments_per_s": half.comments_per_s, "half_load_latency_ms_p50": hp["50"],
            "half_load_latency_ms_p95": hp["95"], "half_load_latency_ms_p99": hp["99"],
            **stats, **{f"half_load_{k}": v for k, v in half_stats.items()}, "_labels": sat.labels}


# --- the run --------------------------------------------------------------------------------------
def _agreement(ref: ModelRef, texts: list[str], device: str, dtypes: list[str], batch_size: int,
               max_tokens: int) -> dict[str, Any]:
    from .agreement import measure_agreement
    from .model import load_model

    source = ref.repo if ref.version is None else ref.path
    return measure_agreement(lambda d: load_model(source, device=device, dtype=d, smoke_test=False), texts, dtypes,
                             batch_size=batch_size, max_tokens=max_tokens)


def _setting(args: argparse.Namespace, name: str) -> Any:
    value = getattr(args, name, None)
    return Settings.model_fields[name].default if value is None else value


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    from .device import resolve_device, set_torch_threads
    from .flops import encoder_shape, matmul_rate, mean_forward_flops

    started = time.perf_counter()
    threads = set_torch_threads(args.threads)
    pool = load_texts(args.texts, int(Settings.model_fields["max_text_chars"].default))
    ref = prepare_model(args.model, args.preset, args.texts, args.cache_dir, pool)
    # As the worker resolves it: auto consults the version's recorded label agreement.
    device, dtype = resolve_device(args.device, args.dtype, ref.manifest.dtype_agreement)
    args.resolved_device, args.resolved_dtype = device, dtype
    args.workers, args.worker_threads = worker_layout(device, args.workers, args.threads)
    random.Random(args.seed).shuffle(pool)
    texts = draw(pool, 0, args.n)
    agree_texts = draw(pool, args.n, args.agreement_n)  # held apart from the timed comments where possible
    batch_size, max_tokens = int(_setting(args, "max_batch_size")), int(_setting(args, "max_batch_tokens"))
    import torch

    result: dict[str, Any] = {"n": args.n, "device": device, "dtype": dtype, "threads": threads,
                              "workers": args.workers, "worker_threads": args.worker_threads,
                              "torch": torch.__version__, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                              "model": str(ref.path), "untrained": ref.untrained, "preset": args.preset,
                              "max_batch_size": batch_size, "max_batch_tokens": max_tokens,
                              "max_wait_ms": float(_setting(args, "max_wait_ms"))}
    if args.agreement_n > 0:
        candidates = [dtype] + [d for d in args.also_dtype or [] if d != dtype and (d != "int8" or device == "cpu")]
        say(f"agreement: {args.agreement_n} comments, float32 vs {', '.join(candidates)}")
        agreement = _agreement(ref, agree_texts, device, candidates, batch_size, max_tokens)
        chosen = agreement[dtype]
        result.update(agreement_n=args.agreement_n, label_agreement=chosen.label_agreement,
                      prob_max_abs_diff=chosen.prob_max_abs_diff,
                      near_threshold_fraction=chosen.near_threshold_fraction,
                      model_only_comments_per_s=chosen.comments_per_s,
                      float32_model_only_comments_per_s=agreement["float32"].comments_per_s)
        for other in candidates[1:]:
            result.update({f"{other}_label_agreement": agreement[other].label_agreement,
                           f"{other}_prob_max_abs_diff": agreement[other].prob_max_abs_diff,
                           f"{other}_model_only_comments_per_s": agreement[other].comments_per_s})
    if args.check_agreement:
        result["elapsed_s"] = time.perf_counter() - started
        return result

    # The baseline is timed in two halves, before and after the worker runs, so that a change in what else
    # runs on the machine affects both sides of the speedup alike.
    base_texts = texts[: min(args.n, args.baseline_n)]
    half = (len(base_texts) + 1) // 2
    say(f"baseline: {len(base_texts)} comments one at a time (float32), half before and half after the worker")
    baseline = Baseline(ref, device)
    meter = CpuMeter().start()
    baseline.run(base_texts[:half])
    other_base = [meter.stop()]

    workdir = Path(args.cache_dir) / "runs" / time.strftime("%Y%m%d-%H%M%S")
    warm = draw(pool, args.n + args.agreement_n, min(args.n, args.warmup_n))
    load = run_worker_phases(args, ref, texts, warm, workdir)
    worker_labels = load.pop("_labels")
    if base_texts[half:]:
        meter = CpuMeter().start()
        baseline.run(base_texts[half:])
        other_base.append(meter.stop())
    base_labels, baseline_rate = baseline.labels, baseline.comments_per_s
    del baseline
    gc.collect()
    result.update(baseline_comments_per_s=baseline_rate, baseline_n=len(base_texts),
                  baseline_extrapolated=len(base_texts) < args.n, other_cpu_cores_baseline=float(np.mean(other_base)))
    result.update(load)
    result["speedup"] = result["worker_comments_per_s"] / baseline_rate
    same = [w == b for w, b in zip(worker_labels, base_labels, strict=False) if w is not None]
    result["baseline_label_agreement"] = sum(same) / len(same) if same else float("nan")

    from transformers import AutoConfig

    shape = encoder_shape(AutoConfig.from_pretrained(str(ref.path), local_files_only=True))
    lengths = token_lengths(ref, texts)
    flops = mean_forward_flops(shape, lengths)
    say(f"ceiling: {dtype} matrix-multiply rate on {device}")
    rate = matmul_rate(device, dtype, shape)
    ceiling = rate / flops
    result.update(mean_tokens_per_comment=float(np.mean(lengths)), gflops_per_comment=flops / 1e9,
                  matmul_tflops=rate / 1e12, compute_bound_comments_per_s=ceiling,
                  fraction_of_ceiling=result["worker_comments_per_s"] / ceiling,
                  worker_logs=str(workdir), elapsed_s=time.perf_counter() - started)
    return result


# --- output ---------------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"
    return str(value)


def render_table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = [("model", f"{r['model']}{' (untrained)' if r['untrained'] else ''}"),
                                   ("device / dtype / threads",
                                    f"{r['device']} / {r['dtype']} / {r['threads']} (workers: {r['workers']} × "
                                    f"{r['worker_threads']} thread(s))")]
    if "label_agreement" in r:
        rows += [(f"label agreement vs float32 ({r['agreement_n']} comments)",
                  f"{100 * r['label_agreement']:.2f}% (max |Δp| {r['prob_max_abs_diff']:.4f}; "
                  f"{100 * r['near_threshold_fraction']:.1f}% of comments within 0.01 of a threshold)"),
                 ("model only, in-process (comments/s)",
                  f"{_fmt(r['model_only_comments_per_s'])} {r['dtype']}, "
                  f"{_fmt(r['float32_model_only_comments_per_s'])} float32")]
    for other in DTYPE_CHOICES:
        if f"{other}_label_agreement" in r:
            rows.append((f"{other} instead, in-process",
                         f"{_fmt(r[f'{other}_model_only_comments_per_s'])} comments/s, label agreement "
                         f"{100 * r[f'{other}_label_agreement']:.2f}%"))
    if "speedup" in r:
        extra = f", measured on {r['baseline_n']} of {r['n']}" if r["baseline_extrapolated"] else ""
        rows += [
            ("baseline: model card code, 1 comment at a time, float32",
             f"{_fmt(r['baseline_comments_per_s'])} comments/s{extra}"),
            (f"worker, saturated ({r['n']} comments)", f"{_fmt(r['worker_comments_per_s'])} comments/s"),
            ("speedup", f"{r['speedup']:.1f}×"),
            ("latency p50 / p95 / p99, saturated (ms)",
             f"{_fmt(r['latency_ms_p50'], 0)} / {_fmt(r['latency_ms_p95'], 0)} / {_fmt(r['latency_ms_p99'], 0)}"),
            (f"half load ({r['half_load_n']} at {r['half_load_rate']:.1f}/s): latency p50 / p99 (ms)",
             f"{_fmt(r['half_load_latency_ms_p50'], 0)} / {_fmt(r['half_load_latency_ms_p99'], 0)}"),
            ("batches: mean size, real/padded tokens",
             f"{_fmt(r.get('mean_batch_size', float('nan')))}, {_fmt(r.get('padding_fill', float('nan')), 2)}"),
            (f"{r['dtype']} matrix multiply (measured)", f"{r['matmul_tflops'] * 1000:,.0f} GFLOP/s"),
            ("model FLOPs per comment", f"{r['gflops_per_comment']:.2f} GFLOP at {r['mean_tokens_per_comment']:.1f} "
                                        "tokens (mean)"),
            ("compute-bound ceiling", f"{_fmt(r['compute_bound_comments_per_s'])} comments/s"),
            ("fraction of ceiling", f"{100 * r['fraction_of_ceiling']:.0f}%"),
            ("worker labels = baseline labels", f"{100 * r['baseline_label_agreement']:.1f}% of baseline comments"),
            ("other processes' CPU: baseline / saturated / half load (cores)",
             f"{_fmt(r['other_cpu_cores_baseline'], 2)} / {_fmt(r['other_cpu_cores_worker'], 2)} / "
             f"{_fmt(r.get('other_cpu_cores_half_load', float('nan')), 2)}"),
        ]
    busy = [r.get(k, 0.0) for k in ("other_cpu_cores_baseline", "other_cpu_cores_worker", "other_cpu_cores_half_load")]
    if any(isinstance(v, float) and v > _BUSY_CORES for v in busy):
        rows.append(("note", "other processes used the CPU during the run: numbers are lower and noisier than on "
                             "an idle machine"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.model is None and args.preset is None:
        args.preset = "bert-base-chinese"
    if args.n < 1 or args.baseline_n < 1 or args.agreement_n < 0 or (args.workers is not None and args.workers < 1):
        raise LivetopicError("--n, --baseline-n and --workers must be ≥ 1, --agreement-n ≥ 0")
    if args.check_agreement and args.agreement_n == 0:
        raise LivetopicError("--check-agreement needs --agreement-n ≥ 1")
    result = run_bench(args)
    if args.json:
        print(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                          for k, v in result.items()}, ensure_ascii=False))
    else:
        print(render_table(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from .modelinit import PRESETS

    p = sub.add_parser("bench", help="baseline vs worker throughput, latency and compute ceiling")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="model repository (REPO or REPO/N) or Hugging Face directory")
    source.add_argument("--preset", choices=list(PRESETS),
                        help="an untrained model of this shape, built once into --cache-dir (default: "
                             "bert-base-chinese when no --model)")
    p.add_argument("--texts", nargs="+", type=Path, required=True, help="comments (files or directories)")
    p.add_argument("--n", type=int, default=2000, help="comments per worker run (default: 2000)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto", help="the worker's dtype (default: auto)")
    p.add_argument("--redis-url", help="a Redis server to use (fresh stream names; default: an embedded one)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--baseline-n", type=int, default=200,
                   help="time the baseline on min(N, this) comments and extrapolate its rate (default: 200)")
    p.add_argument("--agreement-n", type=int, default=1000,
                   help="comments for the label-agreement check against float32; 0 skips it (default: 1000)")
    p.add_argument("--check-agreement", action="store_true", help="only the label-agreement check")
    p.add_argument("--also-dtype", action="append", choices=DTYPE_CHOICES[1:], metavar="DTYPE",
                   help="also measure this dtype's label agreement and in-process speed (repeatable)")
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
