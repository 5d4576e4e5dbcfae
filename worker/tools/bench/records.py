"""What ``livetopic bench`` is asked (:class:`BenchOptions`) and what it measured: one typed record per phase,
and :class:`BenchResult`, whose :meth:`~BenchResult.to_json` is the bench's JSON contract (flat keys)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator

from ...model.agreement import DtypeAgreement
from ...model.presets import PRESETS
from ...options import Flag, Options
from ...settings import DTYPE_CHOICES
from .emulate import EMULATIONS
from .steps import NULL

__all__ = [
    "ALSO_DTYPES",
    "DEFAULT_PRESET",
    "HOST_PATH_KEYS",
    "REQUIRED_KEYS",
    "AgreementPhase",
    "BaselinePhase",
    "BenchOptions",
    "BenchResult",
    "CeilingPhase",
    "Layout",
    "LoadPhase",
]

_LOAD_KEYS = ("worker_comments_per_s", "latency_ms_p50", "latency_ms_p99", "half_load_latency_ms_p99")
_SETUP_KEYS = ("device", "dtype", "n", "backend", "cpu_model", "cpu_features")
REQUIRED_KEYS = (
    "baseline_comments_per_s",
    *_LOAD_KEYS,
    "speedup",
    "compute_bound_comments_per_s",
    "fraction_of_ceiling",
    *_SETUP_KEYS,
)
# ``--preset null``: the host path alone (no model, so no baseline, agreement or ceiling)
HOST_PATH_KEYS = ("host_path_comments_per_s", *_LOAD_KEYS, *_SETUP_KEYS)
DEFAULT_PRESET = "bert-base-chinese"  # without --model or --preset
# --also-dtype: a dtype (on the backend auto gives it), or backend:dtype
ALSO_DTYPES = (
    *DTYPE_CHOICES[1:],
    *(f"{b}:{d}" for b in ("torch", "onnxruntime", "openvino") for d in DTYPE_CHOICES[1:]),
)


class BenchOptions(Options):
    """The command line of ``livetopic bench``, besides the worker's settings it takes (``--redis-url``,
    ``--device``, ``--dtype``, ``--backend``, ``--max-batch-size``, ``--max-batch-tokens``, ``--max-wait-ms``,
    ``--compile``)."""

    model: Annotated[Path | None, Flag(exclusive="source")] = Field(
        None, description="model repository (REPO or REPO/N) or Hugging Face directory"
    )
    preset: Annotated[str | None, Flag(exclusive="source", choices=(*PRESETS, NULL))] = Field(
        None,
        description=f"an untrained model of this shape, built once into --cache-dir (default: {DEFAULT_PRESET} "
        "when no --model); null: no model, one worker with a stand-in that returns fixed scores instantly, to "
        "measure the host path (Redis, parsing, tokenising, batching, publishing)",
    )
    texts: list[Path] = Field(description="comments (files or directories)")
    n: int = Field(2000, ge=1, description="comments per worker run")
    as_json: bool = Field(False, alias="json", description="print one JSON object instead of a table")
    baseline_n: int = Field(
        200, ge=1, description="time the baseline on min(N, this) comments and extrapolate its rate"
    )
    agreement_n: int = Field(
        1000, ge=0, description="comments for the label-agreement check against float32; 0 skips it"
    )
    check_agreement: bool = Field(False, description="only the label-agreement check")
    also_dtype: Annotated[tuple[str, ...], Flag(repeat=True, metavar="DTYPE", choices=ALSO_DTYPES)] = Field(
        (),
        description="also measure this dtype's (or backend:dtype's) label agreement and in-process speed "
        "(repeatable; every engine the CPU offers is measured anyway)",
    )
    warmup_n: int = Field(
        8000,
        ge=0,
        description="comments through the workers before timing, as a backlog (full batches, as the timed phase "
        "runs: an engine that prepares its kernels per input shape meets most of them here)",
    )
    half_load_seconds: float = Field(
        20.0, gt=0, description="length of the half-load phase (its comments drawn as for N, as many as it takes)"
    )
    half_load_rate: float | None = Field(
        None,
        gt=0,
        description="offer the half-load phase at this many comments/s instead of half the saturated rate (runs "
        "then compare latency at equal load on a machine whose speed moves)",
    )
    threads: int | None = Field(
        None, ge=1, description="torch intra-op threads everywhere (default: torch's, all cores)"
    )
    workers: int | None = Field(
        None,
        ge=1,
        description="worker processes in the consumer group, each with --threads "
        "or its share of the cores (default: on CPU one per core, one thread each; on CUDA "
        "one)",
    )
    emulate_cpu: Annotated[str | None, Flag(choices=tuple(EMULATIONS))] = Field(
        None,
        description="measure an older CPU class on this one: hide from CPUID, in every process of the run, the "
        "features it lacks, so the engines run that class's kernels ("
        + "; ".join(f"{k}: {e.description}" for k, e in EMULATIONS.items())
        + "). Linux x86-64 with CPUID faulting; builds a small C library with cc",
    )
    cache_dir: Path = Field(Path(".bench"), description="preset models, run logs and the CPUID masks")
    seed: int = Field(0, description="which comments are drawn")

    @model_validator(mode="before")
    @classmethod
    def _default_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("model") is None and data.get("preset") is None:
            return {**data, "preset": DEFAULT_PRESET}
        return data

    @model_validator(mode="after")
    def _check(self) -> BenchOptions:
        if self.check_agreement and self.agreement_n == 0:
            raise ValueError("--check-agreement needs --agreement-n ≥ 1")
        return self


@dataclass(frozen=True, slots=True)
class Layout:
    """Where and how the workers run: resolved device, dtype and backend, processes and threads each."""

    device: str
    dtype: str
    backend: str
    workers: int
    worker_threads: int


@dataclass(frozen=True, slots=True)
class AgreementPhase:
    """The engines side by side, in-process, with the workers' threads: label agreement with PyTorch float32
    (``"float32"``, the reference) and comments/s at the worker's batch size and at small batches."""

    n: int
    chosen: str  # the workers' engine, "backend:dtype"
    found: dict[str, DtypeAgreement]  # "float32", the workers' engine, the others side by side, the --also-dtype ones
    threads: int

    def to_json(self) -> dict[str, Any]:
        chosen = self.found[self.chosen]
        out: dict[str, Any] = {
            "agreement_n": self.n,
            "label_agreement": chosen.label_agreement,
            "prob_max_abs_diff": chosen.prob_max_abs_diff,
            "near_threshold_fraction": chosen.near_threshold_fraction,
            "model_only_comments_per_s": chosen.comments_per_s,
            "float32_model_only_comments_per_s": self.found["float32"].comments_per_s,
            "engines_threads": self.threads,
        }
        for other, found in self.found.items():
            if other not in (self.chosen, "float32") and ":" not in other:  # --also-dtype DTYPE
                out.update(
                    {
                        f"{other}_label_agreement": found.label_agreement,
                        f"{other}_prob_max_abs_diff": found.prob_max_abs_diff,
                        f"{other}_model_only_comments_per_s": found.comments_per_s,
                    }
                )
        out["engines"] = {
            ("torch:float32" if name == "float32" else name): {
                "label_agreement": found.label_agreement,
                "prob_max_abs_diff": found.prob_max_abs_diff,
                "comments_per_s": found.comments_per_s,
                **{f"comments_per_s_batch_{size}": rate for size, rate in found.small_batch_comments_per_s.items()},
            }
            for name, found in self.found.items()
        }
        return out


@dataclass(frozen=True, slots=True)
class BaselinePhase:
    comments_per_s: float
    n: int
    extrapolated: bool  # timed on fewer comments than the worker got
    other_cpu_cores: float
    label_agreement: float  # share of baseline comments whose worker labels are the same

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline_comments_per_s": self.comments_per_s,
            "baseline_n": self.n,
            "baseline_extrapolated": self.extrapolated,
            "other_cpu_cores_baseline": self.other_cpu_cores,
            "baseline_label_agreement": self.label_agreement,
        }


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
    dtype: str  # the workers'
    tflops: dict[str, float]  # measured matrix-multiply rate of each dtype the CPU (or GPU) offers

    @property
    def matmul_tflops(self) -> float:
        return self.tflops.get(self.dtype, float("nan"))

    @property
    def best_dtype(self) -> str:
        return max(self.tflops, key=self.tflops.__getitem__)

    @property
    def comments_per_s(self) -> float:
        """At the best dtype's rate: a slow dtype cannot make the fraction of this look good."""
        return self.tflops[self.best_dtype] * 1e3 / self.gflops_per_comment

    def to_json(self, worker_rate: float) -> dict[str, Any]:
        return {
            "mean_tokens_per_comment": self.mean_tokens,
            "gflops_per_comment": self.gflops_per_comment,
            "matmul_tflops": self.matmul_tflops,
            "matmul_tflops_by_dtype": self.tflops,
            "ceiling_dtype": self.best_dtype,
            "compute_bound_comments_per_s": self.comments_per_s,
            "chosen_dtype_compute_bound_comments_per_s": self.matmul_tflops * 1e3 / self.gflops_per_comment,
            "fraction_of_ceiling": worker_rate / self.comments_per_s,
        }


@dataclass(frozen=True, slots=True)
class CascadePhase:
    """A pipeline version in-process with one worker's threads: its first stage alone on the texts, then the
    whole cascade (each further stage on the texts meeting its condition); per stage, comments and seconds."""

    n: int
    first_stage_s: float
    stages: dict[str, tuple[int, float]]  # stage → (comments it ran on, seconds), the first included

    def to_json(self) -> dict[str, Any]:
        cascade_s = sum(seconds for _, seconds in self.stages.values())
        return {
            "cascade_cost_vs_first_stage": cascade_s / self.first_stage_s,
            "cascade": {
                "n": self.n,
                "first_stage_comments_per_s": self.n / self.first_stage_s,
                "cascade_comments_per_s": self.n / cascade_s,
                "cost_vs_first_stage": cascade_s / self.first_stage_s,
                "stages": {
                    name: {"comments": comments, "share": comments / self.n, "seconds": seconds}
                    for name, (comments, seconds) in self.stages.items()
                },
            },
        }


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
    cascade: CascadePhase | None = None
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object ``livetopic bench --json`` prints (non-finite numbers as null)."""
        out: dict[str, Any] = {
            "device": self.layout.device,
            "dtype": self.layout.dtype,
            "backend": self.layout.backend,
            "workers": self.layout.workers,
            "worker_threads": self.layout.worker_threads,
            **self.setup,
        }
        for phase in (self.agreement, self.baseline, self.cascade):
            if phase is not None:
                out.update(phase.to_json())
        if self.saturated is not None and self.half_load is not None:
            out.update(_load_json(self.saturated, self.half_load))
        if self.baseline is not None and self.saturated is not None:
            out["speedup"] = self.saturated.comments_per_s / self.baseline.comments_per_s
        if self.ceiling is not None and self.saturated is not None:
            out.update(self.ceiling.to_json(self.saturated.comments_per_s))
        if self.ceiling is not None and "engines" in out:
            for engine in out["engines"].values():  # as the workers would run it: workers × its in-process rate
                share = engine["comments_per_s"] * self.layout.workers / self.ceiling.comments_per_s
                engine["fraction_of_ceiling"] = share
        if self.layout.backend == "null" and self.saturated is not None:
            out["host_path_comments_per_s"] = self.saturated.comments_per_s
        out["elapsed_s"] = self.elapsed_s
        return _finite(out)


def _finite(value: Any) -> Any:
    """Non-finite numbers as None (JSON has no NaN), in nested dicts too."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _load_json(sat: LoadPhase, half: LoadPhase) -> dict[str, Any]:
    return {
        "worker_comments_per_s": sat.comments_per_s,
        "worker_seconds": sat.seconds,
        **{f"latency_ms_p{q}": v for q, v in sat.latency_ms.items()},
        "dead_lettered": sat.dead + half.dead,
        "other_cpu_cores_worker": sat.other_cpu_cores,
        **sat.batches,
        "half_load_rate": half.rate,
        "half_load_n": half.n,
        "other_cpu_cores_half_load": half.other_cpu_cores,
        "half_load_comments_per_s": half.comments_per_s,
        **{f"half_load_latency_ms_p{q}": v for q, v in half.latency_ms.items()},
        **{f"half_load_{k}": v for k, v in half.batches.items()},
    }
