"""``livetopic bench --emulate-cpu``: measure an older CPU class on a newer CPU by hiding, from CPUID, the features
a CPU of that class lacks, so that every engine's kernel dispatcher picks the kernels it would run there.

The mask is a small C library (``cpuid_mask.c``, built once into the cache directory with the system's C compiler)
preloaded into every process of the run: the bench re-runs its own command line with it. It needs Linux on an
x86-64 CPU with CPUID faulting (the ``cpuid_fault`` flag). What it emulates is the instruction set, not the
machine: the cores, caches and memory are still this CPU's, so figures are reported as emulated.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ...errors import ConfigError
from ...model.precision import cpu_flags, cpuid_mask

__all__ = ["EMULATIONS", "Emulation", "enter_emulation", "mask_library", "unavailable"]

# CPUID leaf 7 bits by their Linux flag names: (sub-leaf, register, bit)
_BITS: dict[str, tuple[int, str, int]] = {
    "avx512f": (0, "ebx", 16),
    "avx512dq": (0, "ebx", 17),
    "avx512ifma": (0, "ebx", 21),
    "avx512pf": (0, "ebx", 26),
    "avx512er": (0, "ebx", 27),
    "avx512cd": (0, "ebx", 28),
    "avx512bw": (0, "ebx", 30),
    "avx512vl": (0, "ebx", 31),
    "avx512vbmi": (0, "ecx", 1),
    "avx512_vbmi2": (0, "ecx", 6),
    "avx512_vnni": (0, "ecx", 11),
    "avx512_bitalg": (0, "ecx", 12),
    "avx512_vpopcntdq": (0, "ecx", 14),
    "avx512_4vnniw": (0, "edx", 2),
    "avx512_4fmaps": (0, "edx", 3),
    "avx512_vp2intersect": (0, "edx", 8),
    "amx_bf16": (0, "edx", 22),
    "avx512_fp16": (0, "edx", 23),
    "amx_tile": (0, "edx", 24),
    "amx_int8": (0, "edx", 25),
    "avx_vnni": (1, "eax", 4),
    "avx512_bf16": (1, "eax", 5),
    "amx_fp16": (1, "eax", 21),
    "avx_ifma": (1, "eax", 23),
    "avx_vnni_int8": (1, "edx", 4),
    "avx_ne_convert": (1, "edx", 5),
}
_REGISTERS = ((0, "ebx"), (0, "ecx"), (0, "edx"), (1, "eax"), (1, "edx"))

_NO_AMX = ("amx_bf16", "amx_int8", "amx_tile", "amx_fp16", "avx512_fp16")
_NO_VNNI = (
    *_NO_AMX,
    *("avx512_vnni", "avx_vnni", "avx_vnni_int8", "avx512_bf16", "avx_ne_convert", "avx512_4vnniw"),
    *("avx512ifma", "avx_ifma", "avx512vbmi", "avx512_vbmi2", "avx512_bitalg", "avx512_vpopcntdq"),
    *("avx512_4fmaps", "avx512_vp2intersect"),
)


@dataclass(frozen=True, slots=True)
class Emulation:
    description: str
    hidden: tuple[str, ...]  # Linux flag names, each a key of _BITS


EMULATIONS: dict[str, Emulation] = {
    "vnni": Emulation("AVX-512 with VNNI, no AMX (Xeon Ice Lake, EPYC Zen 4)", _NO_AMX),
    "avx512": Emulation("AVX-512 without VNNI (Xeon Skylake-SP)", _NO_VNNI),
    "avx2": Emulation(
        "AVX2, no AVX-512 (Xeon Haswell-Broadwell, EPYC Zen 1-3)",
        (*_NO_VNNI, *(name for name in _BITS if name.startswith("avx512") and name not in _NO_VNNI)),
    ),
}


def _defines(name: str) -> list[str]:
    emulation = EMULATIONS[name]
    masks = dict.fromkeys(_REGISTERS, 0)
    for flag in emulation.hidden:
        sub, register, bit = _BITS[flag]
        masks[(sub, register)] |= 1 << bit
    return [
        *(f"-DMASK_7_{sub}_{register.upper()}={mask:#x}u" for (sub, register), mask in masks.items()),
        f'-DEMULATED_CPU="{name}"',
        f'-DHIDDEN_FLAGS="{" ".join(emulation.hidden)}"',
    ]


_NO_COMPILER = "--emulate-cpu builds a small C library: install a C compiler (cc; Debian: gcc)"


def _compiler() -> str | None:
    return next((found for cc in ("cc", "gcc", "clang") if (found := shutil.which(cc))), None)


def unavailable() -> str | None:
    """Why ``--emulate-cpu`` cannot run on this machine; None where it can."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64") or "cpuid_fault" not in cpu_flags():
        return (
            "--emulate-cpu needs Linux on an x86-64 CPU that can fault CPUID (the cpuid_fault flag in "
            "/proc/cpuinfo): not this machine"
        )
    if _compiler() is None:
        return _NO_COMPILER
    return None


def mask_library(name: str, cache_dir: Path) -> Path:
    """The CPUID mask emulating ``name`` (a key of :data:`EMULATIONS`), built into ``cache_dir`` once."""
    source = resources.files(__package__).joinpath("cpuid_mask.c").read_bytes()
    defines = _defines(name)
    digest = hashlib.sha256(source + "\0".join(defines).encode()).hexdigest()[:12]
    library = (cache_dir / "cpuid" / f"cpuid-mask-{name}-{digest}.so").resolve()
    if library.exists():
        return library
    compiler = _compiler()
    if compiler is None:
        raise ConfigError(_NO_COMPILER)
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent) as tmp:
        (Path(tmp) / "cpuid_mask.c").write_bytes(source)
        built = Path(tmp) / library.name
        command = [compiler, "-O2", "-shared", "-fPIC", *defines, "-o", str(built), str(Path(tmp) / "cpuid_mask.c")]
        done = subprocess.run([*command, "-ldl"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ConfigError(f"--emulate-cpu: building the CPUID mask failed:\n{done.stderr.strip()}")
        built.replace(library)
    return library


def enter_emulation(name: str, cache_dir: Path) -> None:
    """Return once this process runs under the CPUID mask of ``name``; otherwise build the mask and run this
    command again with it preloaded, in this process (:func:`os.execve`: never returns). For the entry point."""
    mask = cpuid_mask()
    if mask is not None:
        if mask.emulated is None:
            raise ConfigError("--emulate-cpu: the CPUID mask is loaded but this kernel would not fault CPUID")
        if mask.emulated != name:
            raise ConfigError(f"--emulate-cpu {name}: this process already emulates {mask.emulated}")
        return
    if reason := unavailable():
        raise ConfigError(reason)
    library = str(mask_library(name, cache_dir))
    preload = os.environ.get("LD_PRELOAD", "").split()
    if library in preload:  # run again already, and the loader did not load it
        raise ConfigError(f"--emulate-cpu: the CPUID mask {library} was not loaded (LD_PRELOAD)")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, {**os.environ, "LD_PRELOAD": " ".join([library, *preload])})
