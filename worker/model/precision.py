"""Where and in what precision a model runs: the device, the dtype (``auto`` resolved from what the hardware
does natively and what the model's manifest says it tolerates), and torch's thread count."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from ..errors import ModelError
from ..settings import DTYPE_CHOICES

__all__ = [
    "DTYPES",
    "MIN_LABEL_AGREEMENT",
    "auto_dtype_candidates",
    "cpu_flags",
    "cpu_has_int8_dot",
    "cpu_has_native_bf16",
    "prefer_passive_openmp",
    "resolve_device",
    "set_torch_threads",
]

# "int8": the encoder's Linear layers in int8 (weights per channel, activations per token, int32
# accumulation), the rest float32; CPU only.
DTYPES: tuple[str, ...] = tuple(d for d in DTYPE_CHOICES if d != "auto")

# ``auto`` never picks a reduced precision whose recorded label agreement with float32 is below this
# (the manifest's ``dtype_agreement``, measured by the trainer on validation comments).
MIN_LABEL_AGREEMENT = 0.995


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where that is not available)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """True when the CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX-BF16).

    Without them PyTorch still runs bfloat16 on CPU, but emulated and slower than float32.
    """
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_int8_dot() -> bool:
    """True when the CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX-INT8), which run
    int8 matrix products at about twice the bfloat16 rate."""
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def auto_dtype_candidates(device: str) -> list[str]:
    """What ``auto`` tries on ``device``, fastest first (CPU feature checks; CUDA asks torch)."""
    if device == "cuda":
        import torch

        return (["bfloat16"] if torch.cuda.is_bf16_supported() else []) + ["float16", "float32"]
    return (["int8"] if cpu_has_int8_dot() else []) + (["bfloat16"] if cpu_has_native_bf16() else []) + ["float32"]


def resolve_device(device: str = "auto", dtype: str = "auto",
                   agreement: Mapping[str, float] | None = None) -> tuple[str, str]:
    """('auto'|'cpu'|'cuda', 'auto'|dtype) → concrete (device, dtype name).

    ``auto`` device: CUDA when torch sees one. ``auto`` dtype: the fastest the device runs natively: on
    CUDA bfloat16 (else float16); on CPU int8 where the CPU has int8 dot-product instructions, else
    bfloat16 where it has bfloat16 ones, else float32; skipping any dtype whose label agreement with
    float32 in ``agreement`` (the manifest's record) is below :data:`MIN_LABEL_AGREEMENT`.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ModelError(f"unknown device {device!r}; expected auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda asked for, but torch sees no CUDA device")
    if dtype == "auto":
        recorded = agreement or {}
        dtype = next(d for d in auto_dtype_candidates(device)
                     if d == "float32" or recorded.get(d, 1.0) >= MIN_LABEL_AGREEMENT)
    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype {dtype!r}; expected auto or one of {', '.join(DTYPES)}")
    if dtype == "int8" and device != "cpu":
        raise ModelError("dtype int8 (dynamic quantisation) runs on CPU only")
    return device, dtype


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
