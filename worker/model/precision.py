"""Where, on what engine and in what precision a model runs: the device, the backend and the dtype (``auto``
resolved from what the hardware does natively and what the model's manifest says it tolerates), the CPU's
features, and the model's thread count."""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import platform
from collections.abc import Mapping
from typing import NamedTuple

from ..errors import ModelError
from ..settings import BACKEND_CHOICES, DTYPE_CHOICES

__all__ = [
    "BACKENDS",
    "CLASS_ORDER",
    "CPU_ENGINES",
    "CPU_FEATURES",
    "DTYPES",
    "MIN_LABEL_AGREEMENT",
    "CpuidMask",
    "Engine",
    "agreement_key",
    "auto_candidates",
    "cpu_class",
    "cpu_features",
    "cpu_flags",
    "cpu_has_native_bf16",
    "cpu_model",
    "cpuid_mask",
    "engine_runs_here",
    "engine_threads",
    "onnxruntime_available",
    "openvino_available",
    "prefer_passive_openmp",
    "recorded_agreement",
    "resolve_engine",
    "set_torch_threads",
]

DTYPES: tuple[str, ...] = tuple(d for d in DTYPE_CHOICES if d != "auto")
BACKENDS: tuple[str, ...] = tuple(b for b in BACKEND_CHOICES if b != "auto")

# What each backend runs, per device. ONNX Runtime: CPU, float32 and int8 (weights per channel, activations
# per tensor, dynamic); PyTorch: everything else (bfloat16 on CPUs with native bf16, every GPU dtype).
_SUPPORTED: dict[tuple[str, str], tuple[str, ...]] = {
    ("onnxruntime", "cpu"): ("float32", "int8"),
    ("torch", "cpu"): ("float32", "bfloat16", "float16"),
    ("torch", "cuda"): ("float32", "bfloat16", "float16"),
    ("openvino", "cpu"): ("float32", "int8", "bfloat16"),
    ("null", "cpu"): ("float32",),
}

# ``auto`` never picks a reduced precision whose recorded label agreement with float32 is below this
# (the manifest's ``dtype_agreement``, measured by the trainer on validation comments).
MIN_LABEL_AGREEMENT = 0.995

# The CPU features the bench reports (and ``auto`` looks at).
CPU_FEATURES: tuple[str, ...] = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


class Engine(NamedTuple):
    device: str  # "cpu" or "cuda"
    backend: str  # "torch", "onnxruntime" or "null"
    dtype: str


class CpuidMask(NamedTuple):
    """What ``livetopic bench --emulate-cpu``'s CPUID mask (worker/tools/bench/cpuid_mask.c), preloaded into this
    process, does: ``emulated`` is the CPU class it emulates, None where it could not fault CPUID."""

    emulated: str | None
    hidden: frozenset[str]  # the Linux names of the flags CPUID no longer shows


@functools.cache
def cpuid_mask() -> CpuidMask | None:
    """This process's CPUID mask, None where none is preloaded."""
    try:
        lib = ctypes.CDLL(None)
        emulated, hidden = lib.livetopic_emulated_cpu, lib.livetopic_hidden_cpu_flags
    except (AttributeError, OSError, TypeError):  # no such symbols; no C library; Windows (no CDLL(None))
        return None
    emulated.restype = hidden.restype = ctypes.c_char_p
    name = emulated()
    return CpuidMask(name.decode() if name else None, frozenset(hidden().decode().split()))


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where that is not available), less those a CPUID mask
    hides from this process (:func:`cpuid_mask`): the ones the engines' kernel dispatchers see."""
    mask = cpuid_mask()
    hidden = mask.hidden if mask else frozenset()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split()) - hidden
    except OSError:
        pass
    return frozenset()


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_features() -> dict[str, bool]:
    """Which of :data:`CPU_FEATURES` the CPU has."""
    flags = cpu_flags()
    return {name: name in flags for name in CPU_FEATURES}


def cpu_has_native_bf16() -> bool:
    """True when the CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX-BF16).

    Without them PyTorch still runs bfloat16 on CPU, but emulated and slower than float32.
    """
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


@functools.cache
def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


@functools.cache
def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def agreement_key(backend: str, dtype: str) -> str:
    """The manifest's ``dtype_agreement`` key of a backend and dtype (``"onnxruntime:int8"``)."""
    return f"{backend}:{dtype}"


def recorded_agreement(agreement: Mapping[str, float] | None, backend: str, dtype: str) -> float | None:
    """The label agreement recorded for ``backend``/``dtype``: its own key, else a plain ``dtype`` key (manifests
    written before backends had keys, measured with PyTorch: for another backend still the best evidence of how
    the model takes that precision's rounding); None when nothing was recorded."""
    recorded = agreement or {}
    value = recorded.get(agreement_key(backend, dtype), recorded.get(dtype))
    return None if value is None else float(value)


def cpu_class() -> str:
    """The CPU class engines are ranked by: ``amx`` (AMX int8/bf16), ``vnni`` (AVX512-VNNI or AVX-VNNI, no AMX),
    ``no-vnni`` (integer products with 16-bit intermediate sums: AVX2, AVX-512 without VNNI, others)."""
    flags = cpu_flags()
    if flags & {"amx_int8", "amx_bf16"}:
        return "amx"
    return "vnni" if flags & {"avx512_vnni", "avx_vnni"} else "no-vnni"


# ``auto``'s order per CPU class, fastest first in the worker, as ``livetopic bench`` measured it
# (docs/PERFORMANCE.md). AMX, on the 2-core Xeon: two worker processes, OpenVINO int8 (its float layers in bf16,
# passes of 2048 tokens) 856 comments/s saturated against ONNX Runtime int8's 607, but at half load (300/s) p99
# 273 against 163 ms; in-process at one thread, batches of 256 / 4, OpenVINO int8 468-478 / 171-180, ONNX Runtime
# int8 284-324 / 193-205, PyTorch bfloat16 199-211 / 68-72, OpenVINO bfloat16 189-196 / 69-100
# (torch.compile: bfloat16 206 / 79, torchao int8 197 / 87, after 1.5-3 minutes of compiling: not in auto).
# VNNI, on the 2-core AMD EPYC (Zen 4): in-process at one thread, batches of 256 / 4, ONNX Runtime int8 303 / 203,
# OpenVINO int8 283 / 134, OpenVINO bfloat16 185 / 120, PyTorch bfloat16 159 / 81; in two worker processes (before
# the layer norms were unfused) ONNX Runtime int8 301-330 comments/s saturated against OpenVINO int8's 250-286, and
# at half load p99 107-239 against 622-742 ms. No VNNI, emulated on that EPYC (bench --emulate-cpu avx2 / avx512):
# in-process ONNX Runtime int8 77 / 86 at batch 256, 67 / 69 at 4, against OpenVINO int8's 33 / 81 and 24 / 53.
# A version's recorded rates for the class re-rank these orders. An engine this machine lacks (a library
# not installed, bf16 without native bf16) is skipped; a float32 engine comes last, always.
CLASS_ORDER: dict[str, tuple[str, ...]] = {
    "amx": ("openvino:int8", "onnxruntime:int8", "torch:bfloat16", "openvino:bfloat16"),
    "vnni": ("onnxruntime:int8", "openvino:int8", "openvino:bfloat16"),
    "no-vnni": ("onnxruntime:int8", "openvino:int8"),
}
_FLOAT32_ORDER = ("openvino:float32", "onnxruntime:float32", "torch:float32")
# every CPU engine ``livetopic bench`` measures side by side where it runs (besides PyTorch float32, the reference)
CPU_ENGINES = (
    "openvino:int8",
    "onnxruntime:int8",
    "openvino:bfloat16",
    "torch:bfloat16",
    "openvino:float32",
    "onnxruntime:float32",
)


def engine_runs_here(name: str, backend: str = "auto") -> bool:
    """Whether the CPU engine ``name`` (``"backend:dtype"``) can run here, within ``backend`` (or ``auto``)."""
    engine, _, dtype = name.partition(":")
    if backend not in ("auto", engine):
        return False
    if engine == "onnxruntime" and not onnxruntime_available():
        return False
    if engine == "openvino" and not (openvino_available() and onnxruntime_available()):
        return False
    return dtype != "bfloat16" or cpu_has_native_bf16()


def auto_candidates(
    device: str, backend: str = "auto", rates: Mapping[str, Mapping[str, float]] | None = None
) -> list[tuple[str, str]]:
    """(backend, dtype) pairs ``auto`` tries on ``device``, fastest first; the last one, float32, is always
    served. CUDA: PyTorch in bfloat16 (where the GPU has it), float16, float32. CPU: this CPU class's order
    (:data:`CLASS_ORDER`), re-ranked by the in-process rates the version's manifest records for this class where
    it records them (``engine_rates``: measured when it was published), then the fastest float32 engine."""
    if device == "cuda":
        import torch

        dtypes = (["bfloat16"] if torch.cuda.is_bf16_supported() else []) + ["float16", "float32"]
        return [("torch", d) for d in dtypes] if backend in ("auto", "torch") else []
    measured = dict((rates or {}).get(cpu_class(), {}))
    order = [n for n in CLASS_ORDER[cpu_class()] if engine_runs_here(n, backend)]
    order.sort(key=lambda n: -measured.get(n, -1.0))  # stable: unmeasured ones keep the class order, after
    fallback = next(n for n in _FLOAT32_ORDER if engine_runs_here(n, backend) or n == "torch:float32")
    return [(n.partition(":")[0], n.partition(":")[2]) for n in [*order, fallback]]


def _device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ModelError(f"unknown device {device!r}; expected auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda asked for, but torch sees no CUDA device")
    return device


def _backend_for(device: str, dtype: str, rates: Mapping[str, Mapping[str, float]] | None = None) -> str:
    """``backend=auto`` with a dtype asked for by name: on CPU, a reduced precision's first engine in ``auto``'s
    order (:func:`auto_candidates`: this class's, re-ranked by ``rates``), so ``--dtype int8`` runs the int8
    engine ``auto`` would; else (float32, or a GPU) the first backend that runs it."""
    if device == "cpu" and dtype != "float32":
        for name, candidate in auto_candidates(device, "auto", rates):
            if candidate == dtype:
                return name
    for backend, dtypes in _SUPPORTED.items():
        if (
            backend[1] == device
            and dtype in dtypes
            and backend[0] != "null"
            and (backend[0] == "torch" or engine_runs_here(f"{backend[0]}:{dtype}", backend[0]))
        ):
            return backend[0]
    raise ModelError(
        f"no backend runs {dtype} on {device}"
        + (" (int8 runs on CPU only, through ONNX Runtime or OpenVINO)" if dtype == "int8" else "")
    )


def resolve_engine(
    device: str = "auto",
    dtype: str = "auto",
    backend: str = "auto",
    agreement: Mapping[str, float] | None = None,
    rates: Mapping[str, Mapping[str, float]] | None = None,
) -> Engine:
    """('auto'|'cpu'|'cuda', 'auto'|dtype, 'auto'|backend) → concrete :class:`Engine`.

    ``auto`` device: CUDA when torch sees one. ``auto`` dtype (and backend): the first of
    :func:`auto_candidates` whose label agreement with float32 in ``agreement`` (the manifest's record, see
    :func:`recorded_agreement`) is not below :data:`MIN_LABEL_AGREEMENT`, ranked by ``rates`` (the manifest's
    ``engine_rates``) where they are recorded for this CPU class. A dtype or backend asked for by name is
    served as asked, or refused with the reason.
    """
    device = _device(device)
    if dtype != "auto" and dtype not in DTYPES:
        raise ModelError(f"unknown dtype {dtype!r}; expected auto or one of {', '.join(DTYPES)}")
    if backend != "auto" and backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; expected auto or one of {', '.join(BACKENDS)}")
    if backend == "null":
        if device != "cpu" or dtype not in ("auto", "float32"):
            raise ModelError("the null backend (a stand-in with fixed scores) is a CPU float32 stand-in")
        return Engine("cpu", "null", "float32")
    if backend == "onnxruntime" and not onnxruntime_available():
        raise ModelError("backend onnxruntime asked for, but onnxruntime (and onnx) are not installed")
    if backend == "openvino" and not (openvino_available() and onnxruntime_available()):
        raise ModelError("backend openvino asked for, but openvino (and onnx, onnxruntime) are not installed")
    if dtype == "auto":
        found = auto_candidates(device, backend, rates)
        if not found:
            raise ModelError(f"backend {backend} does not run on {device}")
        for candidate_backend, candidate_dtype in found:
            value = recorded_agreement(agreement, candidate_backend, candidate_dtype)
            if candidate_dtype == "float32" or value is None or value >= MIN_LABEL_AGREEMENT:
                return Engine(device, candidate_backend, candidate_dtype)
    if backend == "auto":
        backend = _backend_for(device, dtype, rates)
    if dtype not in _SUPPORTED.get((backend, device), ()):
        served = ", ".join(_SUPPORTED.get((backend, device), ())) or "nothing"
        raise ModelError(
            f"backend {backend} on {device} runs {served}, not {dtype}"
            + (" (int8 runs on CPU only, through ONNX Runtime or OpenVINO)" if dtype == "int8" else "")
        )
    return Engine(device, backend, dtype)


def engine_threads() -> int:
    """The model's intra-op threads: torch's setting (``--torch-threads``, applied before a model loads), which
    the ONNX Runtime backend follows too."""
    import torch

    return int(torch.get_num_threads())


def prefer_passive_openmp() -> None:
    """Make idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``) unless the
    environment says otherwise. Call before torch loads (libgomp reads it once); the worker's entry point does.

    libgomp (torch's OpenMP on Linux) lets idle threads spin before they sleep. When anything else wants the
    cores (the worker's event loop and tokenizer thread, Redis, other processes on a shared host) the spinning
    threads take the time that the thread they wait for needs. Measured on a 2-core host with one core busy
    elsewhere: batched bfloat16 inference at 2 threads, 74 comments/s passive against 8 spinning; int8, 102
    against 41. On an idle host spinning is faster at 2 threads (int8: ~160 against ~100), which is why
    workers on CPU run best single-threaded, one per core: with one thread there is nobody to wait for.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def set_torch_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (None: leave torch's default, which is all cores, or
    ``OMP_NUM_THREADS``). Returns the count in effect. Call before the first model runs."""
    import torch

    if threads is not None and threads >= 1 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return int(torch.get_num_threads())
