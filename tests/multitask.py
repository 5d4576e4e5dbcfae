"""A tiny multi-task model (general, game and sentiment heads) trained on the small made-up chat exports of
:mod:`tests.trainer.test_layers` (no TVL text): what the multi-task tests serve and evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.train import train_model

from .trainer.test_layers import SMALL_RUN, write_exports


def train_into(repo: Path, data: Path, run_dir: Path, **options: Any) -> int:
    """A multi-task run on ``data`` (G0 and G1 held out) published into ``repo``; ``options`` override."""
    common = {**SMALL_RUN, "layer": "multitask", "epochs": 3, "test_games": ["G0", "G1"]}
    return train_model([data], repo, run_dir=str(run_dir), **{**common, **options})


def train_multitask(root: Path) -> tuple[Path, Path]:
    """(the repository with one multi-task version, the exports it was trained on)."""
    data = write_exports(root / "data")
    train_into(root / "multitask", data, root / "run-multitask")
    return root / "multitask", data
