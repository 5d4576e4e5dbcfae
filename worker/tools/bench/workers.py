"""The workers under load: start the real worker processes (one consumer group) against a real Redis, warm
them up, then the saturated and the half-load phases, each with the workers' batch statistics and the CPU
that other processes used meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ...settings import Settings, StreamNames
from ..embedded import EmbeddedRedis
from ..process import WorkerProcess
from .load import CpuMeter, Phase, delete_run_streams, fresh_names, offer, percentiles
from .records import BenchOptions, Layout, LoadPhase
from .steps import ModelRef, draw, say

__all__ = ["batch_stats", "run_load_phases", "worker_layout"]


def worker_layout(device: str, workers: int | None, threads: int | None) -> tuple[int, int]:
    """(worker processes, torch threads each). On CPU by default one single-threaded worker per core: one
    thread per process needs no OpenMP hand-offs between cores, which on a 2-core AVX512-VNNI machine took
    int8 from 117 comments/s (one worker, 2 threads) to 176 (two workers, 1 thread each). On CUDA one worker.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if workers is None:
        workers = 1 if device == "cuda" else max(1, cores // (threads or 1))
    return workers, threads or max(1, cores // workers)


def _worker_flags(settings: Settings, layout: Layout, ref: ModelRef, url: str, names: StreamNames) -> list[str]:
    flags = [
        "--redis-url",
        url,
        "--model-repo",
        str(ref.repo),
        *names.flags(),
        "--group-start-id",
        "0",
        "--device",
        layout.device,
        "--dtype",
        layout.dtype,
        "--backend",
        layout.backend,
        "--log-level",
        "WARNING",
        "--torch-threads",
        str(layout.worker_threads),
        "--max-batch-size",
        str(settings.max_batch_size),
        "--max-batch-tokens",
        str(settings.max_batch_tokens),
        "--max-wait-ms",
        str(settings.max_wait_ms),
        "--max-text-chars",
        str(settings.max_text_chars),
        "--compile" if settings.compile else "--no-compile",
    ]
    if ref.version is not None:
        flags += ["--model-version", str(ref.version)]
    return flags


def _metrics(workers: Sequence[WorkerProcess]) -> dict[str, float]:
    """The workers' /metrics samples, summed over the workers."""
    total: dict[str, float] = {}
    for worker in workers:
        for name, value in worker.metrics().items():
            total[name] = total.get(name, 0.0) + value
    return total


def batch_stats(before: dict[str, float], after: dict[str, float], capacity_s: float = 0.0) -> dict[str, float]:
    """Mean batch size, forward time and padding fill between two snapshots of the workers' metrics; with
    ``capacity_s`` (the phase's seconds × the workers), ``model_busy``: the share of it their models spent in
    forward passes, every stage's (near 1, comments queue behind the passes)."""

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
    model_s = sum(delta(k) for k in after if k.startswith("livetopic_stage_inference_seconds_sum{"))
    if capacity_s > 0 and model_s > 0:
        stats["model_busy"] = model_s / capacity_s
    return stats


def _measured(
    url: str,
    names: StreamNames,
    texts: list[str],
    workers: list[WorkerProcess],
    pids: set[int],
    rate: float | None = None,
) -> tuple[LoadPhase, Phase]:
    meter = CpuMeter(pids).start()
    before = _metrics(workers)
    phase = asyncio.run(offer(url, names, texts, workers, rate=rate, backlog=rate is None))
    record = LoadPhase(
        n=len(texts),
        rate=rate,
        comments_per_s=phase.comments_per_s,
        seconds=phase.seconds,
        latency_ms=percentiles(phase.latencies_ms),
        dead=phase.dead,
        batches=batch_stats(before, _metrics(workers), phase.seconds * len(workers)),
        other_cpu_cores=meter.stop(),
    )
    return record, phase


def _phases(
    opts: BenchOptions,
    settings: Settings,
    layout: Layout,
    ref: ModelRef,
    url: str,
    pool: list[str],
    warm: list[str],
    workdir: Path,
    server: EmbeddedRedis | None,
) -> tuple[LoadPhase, LoadPhase, list[list[str] | None]]:
    names = fresh_names()
    texts = draw(pool, 0, opts.n)
    flags = _worker_flags(settings, layout, ref, url, names)
    with contextlib.ExitStack() as stack:
        workers = [
            stack.enter_context(
                WorkerProcess(
                    [*flags, "--consumer", f"bench-{i}"], workdir / f"worker-{i}.log", threads=layout.worker_threads
                )
            )
            for i in range(layout.workers)
        ]
        for worker in workers:
            worker.wait_ready()
        say(
            f"{len(workers)} worker process(es) ready, {layout.worker_threads} torch thread(s) each; warm-up "
            f"with a backlog of {len(warm)} comments"
        )
        asyncio.run(offer(url, names, warm, workers, backlog=True))
        pids = {p.pid for p in [*(w.proc for w in workers), server.process if server else None] if p is not None}
        say(f"saturation: {len(texts)} comments pushed while the workers are paused, timed from their resumption")
        saturated, phase = _measured(url, names, texts, workers, pids)
        rate = opts.half_load_rate or saturated.comments_per_s / 2
        half_n = max(50, int(rate * opts.half_load_seconds))  # as many as the phase's length takes
        say(f"half load: {half_n} comments offered at {rate:.1f}/s")
        half, _ = _measured(url, names, draw(pool, 0, half_n), workers, pids, rate)
    if settings.redis_url:
        asyncio.run(delete_run_streams(url, names))
    return saturated, half, phase.labels


def run_load_phases(
    opts: BenchOptions,
    settings: Settings,
    layout: Layout,
    ref: ModelRef,
    pool: list[str],
    warm: list[str],
    workdir: Path,
) -> tuple[LoadPhase, LoadPhase, list[list[str] | None]]:
    """(saturated, half load, the labels published in the saturated phase for each of its comments: None where
    none). Both phases draw from ``pool`` (wrapping around): the saturated one its first ``--n`` comments, the
    half-load one ``--half-load-seconds`` worth."""
    if settings.redis_url:
        return _phases(opts, settings, layout, ref, settings.redis_url, pool, warm, workdir, None)
    server = EmbeddedRedis(workdir / "redis", appendonly=False).start()
    try:
        return _phases(opts, settings, layout, ref, server.url, pool, warm, workdir, server)
    finally:
        server.stop()
        shutil.rmtree(workdir / "redis", ignore_errors=True)
