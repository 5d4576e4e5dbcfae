"""One bench run: the phases in order, each measured into its record."""

from __future__ import annotations

import functools
import gc
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError
from ...model.agreement import measure_agreement
from ...model.cascade import run_cascade
from ...model.load import load_model
from ...model.openvino_export import int8_model
from ...model.precision import (
    CPU_ENGINES,
    agreement_key,
    cpu_class,
    cpu_features,
    cpu_has_native_bf16,
    cpu_model,
    cpuid_mask,
    engine_runs_here,
    onnxruntime_available,
    resolve_engine,
    set_torch_threads,
)
from ...model.runtime import LoadedModel
from ...settings import Settings
from .flops import EncoderShape, encoder_shape, matmul_rate, mean_forward_flops, onnxruntime_int8_rate
from .load import CpuMeter
from .records import AgreementPhase, BaselinePhase, BenchOptions, BenchResult, CascadePhase, CeilingPhase, Layout
from .steps import Baseline, ModelRef, draw, load_texts, prepare_model, say, token_lengths
from .workers import run_load_phases, worker_layout

__all__ = ["run_bench"]


def side_by_side(layout: Layout, also: tuple[str, ...] = ()) -> list[str]:
    """The engines the agreement phase runs: the workers' one, every other one this device offers
    (:data:`~worker.model.precision.CPU_ENGINES` on CPU), and the ``--also-dtype`` ones (a dtype, on the backend
    ``auto`` gives it, or ``backend:dtype``)."""
    names = [agreement_key(layout.backend, layout.dtype)]
    if layout.device == "cpu":
        names += [n for n in CPU_ENGINES if engine_runs_here(n)]
    names += list(also)
    unique = list(dict.fromkeys("float32" if n == "torch:float32" else n for n in names))
    return [n for n in unique if n != "float32"]


def _has_openvino_int8(ref: ModelRef) -> bool:
    try:
        int8_model(ref.path)
    except ModelError:
        return False
    return True


def _load_engine(source: Path, device: str, name: str) -> LoadedModel:
    backend, _, dtype = name.rpartition(":")
    if name == "float32":  # the reference: what the trainer measures and the baseline runs
        backend = "torch"
    return load_model(source, device=device, dtype=dtype, backend=backend or "auto", smoke_test=False)


def _agreement(
    opts: BenchOptions, settings: Settings, layout: Layout, ref: ModelRef, texts: list[str]
) -> AgreementPhase:
    names = side_by_side(layout, tuple(d for d in opts.also_dtype if d != "int8" or layout.device == "cpu"))
    if "openvino:int8" in names and not _has_openvino_int8(ref):
        say("openvino:int8 left out: this version was published without an OpenVINO int8 model")
        names.remove("openvino:int8")
    chosen = agreement_key(layout.backend, layout.dtype)
    chosen = "float32" if chosen == "torch:float32" else chosen
    small = () if opts.check_agreement else (4, 1)
    say(
        f"engines side by side, {layout.worker_threads} thread(s): {len(texts)} comments, float32 (PyTorch) vs "
        f"{', '.join(names)}" + (f"; batches of {' and '.join(map(str, small))} on 64 of them" if small else "")
    )
    source = ref.repo if ref.version is None else ref.path
    threads = set_torch_threads(layout.worker_threads)  # as one worker runs; the ORT backend follows torch's
    try:
        found = measure_agreement(
            lambda name: _load_engine(source, layout.device, name),
            texts,
            names,
            batch_size=settings.max_batch_size,
            max_tokens=settings.max_batch_tokens,
            small_batches=small,
        )
    finally:
        set_torch_threads(opts.threads or os.cpu_count() or 1)
    return AgreementPhase(len(texts), chosen, found, threads)


def _cascade(opts: BenchOptions, settings: Settings, layout: Layout, pipeline: Path, texts: list[str]) -> CascadePhase:
    """A pipeline version's cost against its first stage alone, in-process with one worker's threads."""
    say(f"cascade: {len(texts)} comments through the first stage alone, then the whole pipeline")
    model = load_model(pipeline, device=layout.device, dtype=layout.dtype, backend=layout.backend)
    set_torch_threads(layout.worker_threads)
    try:
        run = functools.partial(
            run_cascade, model, batch_size=settings.max_batch_size, max_tokens=settings.max_batch_tokens
        )
        run(texts[:64])  # warm-up
        [first] = run(texts, first_only=True)
        stages = run(texts)
    finally:
        set_torch_threads(opts.threads or os.cpu_count() or 1)
    return CascadePhase(len(texts), first.seconds, {s.name: (len(s.rows), s.seconds) for s in stages})


def ceiling_rates(layout: Layout, shape: EncoderShape, threads: int) -> dict[str, float]:
    """Measured matrix-multiply FLOP/s of each dtype the device offers (and the workers' one): float32, bfloat16
    where native (PyTorch), int8 on CPU (ONNX Runtime's integer product, as its int8 layers run)."""
    device = layout.device
    dtypes = {layout.dtype, "float32"} | ({"bfloat16"} if device == "cuda" or cpu_has_native_bf16() else set())
    rates = {d: matmul_rate(device, d, shape) for d in sorted(dtypes - {"int8"})}
    if device == "cpu" and onnxruntime_available():
        rates["int8"] = onnxruntime_int8_rate(shape, threads)
    return rates


def _ceiling(ref: ModelRef, layout: Layout, texts: list[str], threads: int) -> CeilingPhase:
    from transformers import AutoConfig

    shape = encoder_shape(AutoConfig.from_pretrained(str(ref.path), local_files_only=True))
    lengths = token_lengths(ref, texts)
    say(f"ceiling: matrix-multiply rates on {layout.device} ({threads} thread(s))")
    rates = ceiling_rates(layout, shape, threads)
    return CeilingPhase(
        mean_tokens=float(np.mean(lengths)),
        gflops_per_comment=mean_forward_flops(shape, lengths) / 1e9,
        dtype=layout.dtype,
        tflops={d: r / 1e12 for d, r in rates.items()},
    )


def _setup(opts: BenchOptions, settings: Settings, ref: ModelRef, threads: int) -> dict[str, Any]:
    import torch

    ort = None
    if onnxruntime_available():
        import onnxruntime

        ort = onnxruntime.__version__
    return {
        "n": opts.n,
        "threads": threads,
        "torch": torch.__version__,
        "onnxruntime": ort,
        "cpu_model": cpu_model(),
        "cpu_features": cpu_features(),
        "cpu_class": cpu_class(),
        "cpu_emulated": mask.emulated if (mask := cpuid_mask()) else None,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "model": str(ref.path),
        "untrained": ref.untrained,
        "preset": opts.preset,
        "max_batch_size": settings.max_batch_size,
        "max_batch_tokens": settings.max_batch_tokens,
        "max_wait_ms": settings.max_wait_ms,
    }


def _with_workers(
    opts: BenchOptions, settings: Settings, result: BenchResult, ref: ModelRef, pool: list[str], texts: list[str]
) -> None:
    """Baseline (half before, half after the workers, so that a change in what else runs on the machine affects
    both sides of the speedup alike), the load phases, and the ceiling."""
    base_texts = texts[: min(opts.n, opts.baseline_n)]
    half = (len(base_texts) + 1) // 2
    say(f"baseline: {len(base_texts)} comments one at a time (float32), half before and half after the worker")
    baseline = Baseline(ref, result.layout.device)
    meters = [CpuMeter().start()]
    baseline.run(base_texts[:half])
    other = [meters[0].stop()]
    workdir = _workdir(opts)
    warm = draw(pool, opts.n + opts.agreement_n, opts.warmup_n)
    result.saturated, result.half_load, labels = run_load_phases(
        opts, settings, result.layout, ref, pool, warm, workdir
    )
    result.setup["worker_logs"] = str(workdir)
    if base_texts[half:]:
        meter = CpuMeter().start()
        baseline.run(base_texts[half:])
        other.append(meter.stop())
    same = [w == b for w, b in zip(labels, baseline.labels, strict=False) if w is not None]
    result.baseline = BaselinePhase(
        baseline.comments_per_s,
        len(base_texts),
        len(base_texts) < opts.n,
        float(np.mean(other)),
        sum(same) / len(same) if same else float("nan"),
    )
    del baseline
    gc.collect()
    result.ceiling = _ceiling(ref, result.layout, texts, int(result.setup["threads"]))


def _workdir(opts: BenchOptions) -> Path:
    return Path(opts.cache_dir) / "runs" / time.strftime("%Y%m%d-%H%M%S")


def run_bench(opts: BenchOptions, settings: Settings) -> BenchResult:
    started = time.perf_counter()
    threads = set_torch_threads(opts.threads)
    pool = load_texts(opts.texts, settings.max_text_chars)
    ref = prepare_model(opts.model, opts.preset, opts.texts, opts.cache_dir, pool)
    # As the worker resolves it: auto consults the version's recorded label agreement.
    engine = resolve_engine(
        settings.device,
        settings.dtype,
        "null" if opts.preset == "null" else settings.backend,
        ref.manifest.dtype_agreement,
        ref.manifest.engine_rates,
    )
    workers = 1 if engine.backend == "null" and opts.workers is None else opts.workers  # the host path: one process
    layout = Layout(engine.device, engine.dtype, engine.backend, *worker_layout(engine.device, workers, opts.threads))
    result = BenchResult(layout, _setup(opts, settings, ref, threads))
    random.Random(opts.seed).shuffle(pool)
    texts = draw(pool, 0, opts.n)
    if engine.backend == "null":  # no model: nothing to agree with, no baseline, no ceiling
        warm = draw(pool, opts.n, opts.warmup_n)
        workdir = _workdir(opts)
        result.saturated, result.half_load, _ = run_load_phases(opts, settings, layout, ref, pool, warm, workdir)
        result.setup["worker_logs"] = str(workdir)
        result.elapsed_s = time.perf_counter() - started
        return result
    if opts.agreement_n > 0:  # comments held apart from the timed ones where the pool allows
        result.agreement = _agreement(opts, settings, layout, ref, draw(pool, opts.n, opts.agreement_n))
    if ref.pipeline is not None and not opts.check_agreement:
        result.cascade = _cascade(opts, settings, layout, ref.pipeline, texts[: opts.baseline_n])
    if not opts.check_agreement:
        _with_workers(opts, settings, result, ref, pool, texts)
    result.elapsed_s = time.perf_counter() - started
    return result
