"""``livetopic bench --emulate-cpu``'s CPUID mask: built with the system's C compiler, preloaded into a real
process, where PyTorch's own kernel dispatcher and livetopic's CPU class see the emulated CPU, and where a
segmentation fault that is not a CPUID stays fatal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker.tools.bench.emulate import EMULATIONS, _defines, mask_library, unavailable

_PROBE = """
import faulthandler, json, sys
import torch
from worker.model.precision import cpu_class, cpu_flags, cpuid_mask
mask = cpuid_mask()
print(json.dumps({
    "torch": torch.backends.cpu.get_cpu_capability(),
    "emulated": mask.emulated if mask else None,
    "hidden": sorted(mask.hidden) if mask else [],
    "class": cpu_class(),
    "avx512f": "avx512f" in cpu_flags(),
    "avx2": "avx2" in cpu_flags(),
}), flush=True)
if sys.argv[1:] == ["crash"]:
    faulthandler.enable()
    import ctypes
    ctypes.string_at(0)
"""


def _probe(library: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LD_PRELOAD": str(library)} if library else dict(os.environ)
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def avx2_mask(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if reason := unavailable():
        pytest.skip(reason)
    return mask_library("avx2", tmp_path_factory.mktemp("cpuid"))


def test_masks_clear_each_class_bits() -> None:
    vnni = dict(d.removeprefix("-D").split("=", 1) for d in _defines("vnni"))
    assert vnni["MASK_7_0_EDX"] == f"{(1 << 22) | (1 << 23) | (1 << 24) | (1 << 25):#x}u"  # AMX, AVX512-FP16
    assert vnni["MASK_7_0_EBX"] == vnni["MASK_7_0_ECX"] == "0x0u"  # AVX-512 and VNNI kept
    avx512 = dict(d.removeprefix("-D").split("=", 1) for d in _defines("avx512"))
    assert int(avx512["MASK_7_0_ECX"].rstrip("u"), 16) & (1 << 11)  # AVX512-VNNI
    assert (int(avx512["MASK_7_1_EAX"].rstrip("u"), 16) & 0x30) == 0x30  # AVX-VNNI (bit 4), AVX512-BF16 (5)
    assert not int(avx512["MASK_7_0_EBX"].rstrip("u"), 16) & (1 << 16)  # AVX512F kept
    avx2 = dict(d.removeprefix("-D").split("=", 1) for d in _defines("avx2"))
    assert int(avx2["MASK_7_0_EBX"].rstrip("u"), 16) & (1 << 16)  # AVX512F hidden
    assert set(EMULATIONS["vnni"].hidden) < set(EMULATIONS["avx512"].hidden) < set(EMULATIONS["avx2"].hidden)


def test_the_mask_is_built_once(avx2_mask: Path) -> None:
    assert avx2_mask.is_file()
    assert mask_library("avx2", avx2_mask.parent.parent) == avx2_mask
    assert mask_library("vnni", avx2_mask.parent.parent) != avx2_mask  # another class, another library


def test_dispatchers_see_the_emulated_cpu(avx2_mask: Path) -> None:
    real = json.loads(_probe(None).stdout)
    if not real["avx512f"]:
        pytest.skip("this CPU has no AVX-512 to hide")
    done = _probe(avx2_mask)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout)
    assert real["torch"].startswith("AVX512") and real["emulated"] is None
    assert seen["torch"] == "AVX2"  # PyTorch's own CPUID-based dispatch picks its AVX2 kernels
    assert seen["emulated"] == "avx2" and "avx512f" in seen["hidden"] and "avx512_vnni" in seen["hidden"]
    assert seen["class"] == "no-vnni" and not seen["avx512f"] and seen["avx2"]


def test_a_real_segfault_stays_fatal_and_reaches_the_program_handler(avx2_mask: Path) -> None:
    done = _probe(avx2_mask, "crash")
    assert done.returncode == -11, done.stderr[-2000:]
    assert '"emulated": "avx2"' in done.stdout  # the CPUIDs before it were answered
    assert "Fatal Python error: Segmentation fault" in done.stderr  # faulthandler's handler ran, chained
