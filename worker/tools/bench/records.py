"""What ``livetopic bench`` is asked (:class:`BenchOptions`) and what it measured: one typed record per phase,
and :class:`BenchResult`, whose :meth:`~BenchResult.to_json` is the bench's JSON contract (flat keys)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...model.agreement import DtypeAgreement

__all__ = ["REQUIRED_KEYS", "AgreementPhase", "BaselinePhase", "BenchOptions", "BenchResult", "CeilingPhase",
           "Layout", "LoadPhase"]

REQUIRED_KEYS = ("baseline_comments_per_s", "worker_comments_per_s", "speedup", "latency_ms_p50", "latency_ms_p99",
                 "half_load_latency_ms_p99", "compute_bound_comments_per_s", "fraction_of_ceiling", "device", "dtype",
                 "n")


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """The command line of ``livetopic bench`` (None: the worker's default)."""

    texts: list[Path]
    model: Path | None = None
    preset: str | None = None
    n: int = 2000
    device: str = "auto"
    dtype: str = "auto"
    redis_url: str | None = None
    baseline_n: int = 200
    agreement_n: int = 1000
    check_agreement: bool = False
    also_dtype: tuple[str, ...] = ()
    warmup_n: int = 256
    half_load_seconds: float = 20.0
    threads: int | None = None
    workers: int | None = None
    max_batch_size: int | None = None
    max_batch_tokens: int | None = None
    max_wait_ms: float | None = None
    compile: bool = False
    cache_dir: Path = Path(".bench")
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Layout:
    """Where and how the workers run: resolved device and dtype, processes and torch threads each."""

    device: str
    dtype: str
    workers: int
    worker_threads: int


@dataclass(frozen=True, slots=True)
class AgreementPhase:
    n: int
    dtype: str  # the worker's
    found: dict[str, DtypeAgreement]  # float32 (the reference), the worker's dtype, the --also-dtype ones

    def to_json(self) -> dict[str, Any]:
        chosen = self.found[self.dtype]
        out = {"agreement_n": self.n, "label_agreement": chosen.label_agreement,
               "prob_max_abs_diff": chosen.prob_max_abs_diff, "near_threshold_fraction": chosen.near_threshold_fraction,
               "model_only_comments_per_s": chosen.comments_per_s,
               "float32_model_only_comments_per_s": self.found["float32"].comments_per_s}
        for other, found in self.found.items():
            if other not in (self.dtype, "float32"):
                out.update({f"{other}_label_agreement": found.label_agreement,
                            f"{other}_prob_max_abs_diff": found.prob_max_abs_diff,
                            f"{other}_model_only_comments_per_s": found.comments_per_s})
        return out


@dataclass(frozen=True, slots=True)
class BaselinePhase:
    comments_per_s: float
    n: int
    extrapolated: bool  # timed on fewer comments than the worker got
    other_cpu_cores: float
    label_agreement: float  # share of baseline comments whose worker labels are the same

    def to_json(self) -> dict[str, Any]:
        return {"baseline_comments_per_s": self.comments_per_s, "baseline_n": self.n,
                "baseline_extrapolated": self.extrapolated, "other_cpu_cores_baseline": self.other_cpu_cores,
                "baseline_label_agreement": self.label_agreement}


@dataclass(frozen=True, slots=True)
class LoadPhase:
    """One load phase of the real workers: comments offered (at ``rate``, or all at once) until all published."""

    n: int
    rate: float | None
    comments_per_s: float
    seconds: float  # first push → last result published
    latency_ms: dict[str, float]  # percentile ("50", "95", "99") → ms
    dead: int
    batches: dict[str, float]  # mean_batch_size, mean_inference_ms, padding_fill (from the workers' metrics)
    other_cpu_cores: float


@dataclass(frozen=True, slots=True)
class CeilingPhase:
    mean_tokens: float
    gflops_per_comment: float
    matmul_tflops: float  # measured, in the worker's dtype

    @property
    def comments_per_s(self) -> float:
        return self.matmul_tflops * 1e3 / self.gflops_per_comment


@dataclass(slots=True)
class BenchResult:
    """Everything one run measured; phases not run are None."""

    layout: Layout
    setup: dict[str, Any]  # n, threads, model, versions…: facts about the run
    agreement: AgreementPhase | None = None
    baseline: BaselinePhase | None = None
    saturated: LoadPhase | None = None
    half_load: LoadPhase | None = None
    ceiling: CeilingPhase | None = None
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object ``livetopic bench --json`` prints (non-finite numbers as null)."""
        out: dict[str, Any] = {"device": self.layout.device, "dtype": self.layout.dtype,
                               "workers": self.layout.workers, "worker_threads": self.layout.worker_threads,
                               **self.setup}
        for phase in (self.agreement, self.baseline):
            if phase is not None:
                out.update(phase.to_json())
        if self.saturated is not None and self.half_load is not None:
            out.update(_load_json(self.saturated, self.half_load))
        if self.baseline is not None and self.saturated is not None:
            out["speedup"] = self.saturated.comments_per_s / self.baseline.comments_per_s
        if self.ceiling is not None and self.saturated is not None:
            c = self.ceiling
            out.update(mean_tokens_per_comment=c.mean_tokens, gflops_per_comment=c.gflops_per_comment,
                       matmul_tflops=c.matmul_tflops, compute_bound_comments_per_s=c.comments_per_s,
                       fraction_of_ceiling=self.saturated.comments_per_s / c.comments_per_s)
        out["elapsed_s"] = self.elapsed_s
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in out.items()}


def _load_json(sat: LoadPhase, half: LoadPhase) -> dict[str, Any]:
    return {"worker_comments_per_s": sat.comments_per_s, "worker_seconds": sat.seconds,
            **{f"latency_ms_p{q}": v for q, v in sat.latency_ms.items()}, "dead_lettered": sat.dead + half.dead,
            "other_cpu_cores_worker": sat.other_cpu_cores, **sat.batches,
            "half_load_rate": half.rate, "half_load_n": half.n, "other_cpu_cores_half_load": half.other_cpu_cores,
            "half_load_comments_per_s": half.comments_per_s,
            **{f"half_load_latency_ms_p{q}": v for q, v in half.latency_ms.items()},
            **{f"half_load_{k}": v for k, v in half.batches.items()}}
