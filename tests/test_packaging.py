"""What ``pip install`` of the wheel gets, read from the wheel's own metadata (built offline from a copy of the
checkout): a torch range with an upper bound that holds the version ``make test`` runs, the license as an SPDX
expression, classifiers and the Python versions they name matching ``Requires-Python``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement

from .conftest import ROOT


def built_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("worker", "trainer"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("livetopic-*.whl")
    return wheel


def wheel_metadata(tmp_path: Path) -> Message:
    with zipfile.ZipFile(built_wheel(tmp_path)) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def pinned_torch() -> str:
    match = re.search(r"^torch==([\d.]+)", (ROOT / "requirements" / "cpu.txt").read_text(), re.M)
    assert match, "requirements/cpu.txt pins torch"
    return match.group(1)


def test_the_wheel_says_what_it_was_tested_with(tmp_path: Path) -> None:
    meta = wheel_metadata(tmp_path)
    (torch,) = [Requirement(r) for r in meta.get_all("Requires-Dist") if Requirement(r).name == "torch"]
    assert any(spec.operator in ("<", "<=", "~=", "==") for spec in torch.specifier), torch  # an upper bound
    assert torch.specifier.contains(pinned_torch()) and not torch.specifier.contains("2.99")
    assert meta["License-Expression"] == "Apache-2.0" and meta["License"] is None
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers and "Typing :: Typed" in classifiers
    assert meta["Requires-Python"] == ">=3.11"


def test_the_wheel_ships_every_game_of_the_sample(tmp_path: Path) -> None:
    """``livetopic demo`` trains on all of ``worker/data`` from an installed package, not only its first game."""
    with zipfile.ZipFile(built_wheel(tmp_path)) as archive:
        shipped = {n for n in archive.namelist() if n.startswith("worker/data/") and n.endswith(".jsonl")}
    games = {p.relative_to(ROOT).as_posix() for p in (ROOT / "worker" / "data").rglob("*.jsonl")}
    assert shipped == games and "worker/data/games/sample-2.jsonl" in shipped
