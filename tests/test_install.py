"""The CPU install path never pulls CUDA wheels: requirements/cpu_torch.py, run against pip's real resolver with
two local package indexes standing in for PyPI (whose torch==2.13.0 is the CUDA build, depending on nvidia-*
packages) and the PyTorch CPU wheel index (2.13.0+cpu, no CUDA dependencies). The machine's own pip
configuration (local mirrors, wheel directories) is switched off."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "requirements" / "cpu_torch.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cpu_torch", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wheel(index: Path, name: str, version: str, requires: list[str] = ()) -> None:  # type: ignore[assignment]
    """A minimal wheel (metadata only) in ``index/<name>/`` with its ``index.html``: a local simple index."""
    folder = index / name.replace("_", "-")
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    files = {
        f"{dist}/METADATA": metadata,
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{n},,\n" for n in files) + f"{dist}/RECORD,,\n"
    filename = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(folder / filename, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    (folder / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="{filename}">{filename}</a></body></html>', encoding="utf-8"
    )


def plan(tmp_path: Path, cpu_index: str) -> subprocess.CompletedProcess[str]:
    pypi = tmp_path / "pypi"
    if not pypi.exists():
        wheel(pypi, "torch", "2.13.0", ["nvidia-cublas-cu12==12.9.1", "filelock"])
        wheel(pypi, "nvidia_cublas_cu12", "12.9.1")
        wheel(pypi, "filelock", "3.20.0")
        wheel(tmp_path / "cpu", "torch", "2.13.0+cpu", ["filelock"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=pypi.as_uri(), PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1"
    )
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--plan-only", "--index", cpu_index],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_the_cpu_index_wins_and_nothing_from_cuda_is_planned(tmp_path: Path) -> None:
    proc = plan(tmp_path, (tmp_path / "cpu").as_uri())
    assert proc.returncode == 0, proc.stderr
    assert "using the CPU wheel index" in proc.stderr
    assert "torch==2.13.0+cpu" in proc.stderr and "nvidia" not in proc.stderr


def test_without_the_cpu_index_a_cuda_plan_is_refused(tmp_path: Path) -> None:
    proc = plan(tmp_path, (tmp_path / "unreachable").as_uri())
    assert proc.returncode == 1
    assert "is unreachable; resolving torch from pip's configured indexes" in proc.stderr
    assert "refusing: this plan pulls CUDA packages (nvidia-cublas-cu12==12.9.1)" in proc.stderr


def test_cuda_packages_of_a_report() -> None:
    report = {
        "install": [
            {"metadata": {"name": n, "version": "1"}}
            for n in ("torch", "nvidia-cudnn-cu12", "cuda-bindings", "triton", "sympy")
        ]
    }
    assert _load().cuda_packages(report) == ["cuda-bindings==1", "nvidia-cudnn-cu12==1", "triton==1"]


def make_install(tmp_path: Path, *flags: str) -> list[list[str]]:
    """``make install`` for real, with a recording stand-in for the virtualenv's Python: the commands it ran."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls"
    stand_in = venv / "bin" / "python"
    stand_in.write_text(f'#!/bin/sh\nprintf "%s\\t" "$@" >> {calls}\necho >> {calls}\n', encoding="utf-8")
    stand_in.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("TORCH", "TORCH_INDEX", "VENV", "PYTHON", "MAKEFLAGS")}
    proc = subprocess.run(
        ["make", "-C", str(ROOT), "install", f"VENV={venv}", *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (venv / ".livetopic-installed").exists()
    return [line.rstrip("\t").split("\t") for line in calls.read_text(encoding="utf-8").splitlines()]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")
def test_make_install_takes_torch_from_the_cpu_index_first(tmp_path: Path) -> None:
    calls = make_install(tmp_path)
    assert calls[0] == ["requirements/cpu_torch.py", "--index", "https://download.pytorch.org/whl/cpu"]
    assert calls[1][:4] == ["-m", "pip", "install", "-q"] and "requirements/constraints.txt" in calls[1]
    assert len(calls) == 2
    assert "torch==2.13.0" in (ROOT / "requirements" / "cpu.txt").read_text(encoding="utf-8").split()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")
def test_make_install_leaves_a_gpu_torch_alone(tmp_path: Path) -> None:
    calls = make_install(tmp_path, "TORCH=gpu", "TORCH_INDEX=file:///nowhere")
    assert [c[0] for c in calls] == ["-m"], calls  # pip install of the project only: no cpu_torch.py
