"""One bench run: the phases in order, each measured into its record."""

from __future__ import annotations

import gc
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...model.agreement import measure_agreement
from ...model.load import load_model
from ...model.precision import resolve_device, set_torch_threads
from ...settings import Settings
from .flops import encoder_shape, matmul_rate, mean_forward_flops
from .load import CpuMeter
from .records import AgreementPhase, BaselinePhase, BenchOptions, BenchResult, CeilingPhase, Layout
from .steps import Baseline, ModelRef, draw, load_texts, prepare_model, say, token_lengths
from .workers import run_load_phases, worker_layout

__all__ = ["run_bench"]


def _setting(opts: BenchOptions, name: str) -> Any:
    value = getattr(opts, name)
    return Settings.model_fields[name].default if value is None else value


def _agreement(opts: BenchOptions, layout: Layout, ref: ModelRef, texts: list[str]) -> AgreementPhase:
    candidates = [layout.dtype] + [d for d in opts.also_dtype
                                   if d != layout.dtype and (d != "int8" or layout.device == "cpu")]
    say(f"agreement: {len(texts)} comments, float32 vs {', '.join(candidates)}")
    source = ref.repo if ref.version is None else ref.path
    found = measure_agreement(lambda d: load_model(source, device=layout.device, dtype=d, smoke_test=False), texts,
                              candidates, batch_size=int(_setting(opts, "max_batch_size")),
                              max_tokens=int(_setting(opts, "max_batch_tokens")))
    return AgreementPhase(len(texts), layout.dtype, found)


def _ceiling(ref: ModelRef, layout: Layout, texts: list[str]) -> CeilingPhase:
    from transformers import AutoConfig

    shape = encoder_shape(AutoConfig.from_pretrained(str(ref.path), local_files_only=True))
    lengths = token_lengths(ref, texts)
    say(f"ceiling: {layout.dtype} matrix-multiply rate on {layout.device}")
    return CeilingPhase(mean_tokens=float(np.mean(lengths)),
                        gflops_per_comment=mean_forward_flops(shape, lengths) / 1e9,
                        matmul_tflops=matmul_rate(layout.device, layout.dtype, shape) / 1e12)


def _setup(opts: BenchOptions, layout: Layout, ref: ModelRef, threads: int) -> dict[str, Any]:
    import torch

    return {"n": opts.n, "threads": threads, "torch": torch.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "model": str(ref.path), "untrained": ref.untrained,
            "preset": opts.preset, "max_batch_size": int(_setting(opts, "max_batch_size")),
            "max_batch_tokens": int(_setting(opts, "max_batch_tokens")),
            "max_wait_ms": float(_setting(opts, "max_wait_ms"))}


def _with_workers(opts: BenchOptions, result: BenchResult, ref: ModelRef, pool: list[str], texts: list[str]) -> None:
    """Baseline (half before, half after the workers, so that a change in what else runs on the machine affects
    both sides of the speedup alike), the load phases, and the ceiling."""
    base_texts = texts[: min(opts.n, opts.baseline_n)]
    half = (len(base_texts) + 1) // 2
    say(f"baseline: {len(base_texts)} comments one at a time (float32), half before and half after the worker")
    baseline = Baseline(ref, result.layout.device)
    meters = [CpuMeter().start()]
    baseline.run(base_texts[:half])
    other = [meters[0].stop()]
    workdir = Path(opts.cache_dir) / "runs" / time.strftime("%Y%m%d-%H%M%S")
    warm = draw(pool, opts.n + opts.agreement_n, min(opts.n, opts.warmup_n))
    result.saturated, result.half_load, labels = run_load_phases(opts, result.layout, ref, texts, warm, workdir)
    result.setup["worker_logs"] = str(workdir)
    if base_texts[half:]:
        meter = CpuMeter().start()
        baseline.run(base_texts[half:])
        other.append(meter.stop())
    same = [w == b for w, b in zip(labels, baseline.labels, strict=False) if w is not None]
    result.baseline = BaselinePhase(baseline.comments_per_s, len(base_texts), len(base_texts) < opts.n,
                                    float(np.mean(other)), sum(same) / len(same) if same else float("nan"))
    del baseline
    gc.collect()
    result.ceiling = _ceiling(ref, result.layout, texts)


def run_bench(opts: BenchOptions) -> BenchResult:
    started = time.perf_counter()
    threads = set_torch_threads(opts.threads)
    pool = load_texts(opts.texts, int(Settings.model_fields["max_text_chars"].default))
    ref = prepare_model(opts.model, opts.preset, opts.texts, opts.cache_dir, pool)
    # As the worker resolves it: auto consults the version's recorded label agreement.
    device, dtype = resolve_device(opts.device, opts.dtype, ref.manifest.dtype_agreement)
    layout = Layout(device, dtype, *worker_layout(device, opts.workers, opts.threads))
    result = BenchResult(layout, _setup(opts, layout, ref, threads))
    random.Random(opts.seed).shuffle(pool)
    texts = draw(pool, 0, opts.n)
    if opts.agreement_n > 0:  # comments held apart from the timed ones where the pool allows
        result.agreement = _agreement(opts, layout, ref, draw(pool, opts.n, opts.agreement_n))
    if not opts.check_agreement:
        _with_workers(opts, result, ref, pool, texts)
    result.elapsed_s = time.perf_counter() - started
    return result
