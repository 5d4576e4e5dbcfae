"""A tiny multi-task model (general, game and sentiment heads) trained on the small made-up chat exports of
:mod:`tests.trainer.test_layers` (no TVL text): what the multi-task tests serve and evaluate."""

from __future__ import annotations

from pathlib import Path

from trainer.train import train_model

from .trainer.test_layers import write_exports


def train_multitask(root: Path) -> tuple[Path, Path]:
    """(the repository with one multi-task version, the exports it was trained on); G0 and G1 held out."""
    data = write_exports(root / "data")
    repo = root / "multitask"
    train_model(
        [data],
        repo,
        layer="multitask",
        preset="tiny",
        epochs=3,
        max_minutes=2,
        lr=3e-3,
        batch_size=16,
        threads=1,
        quiet=True,
        agreement_n=0,
        run_dir=str(root / "run-multitask"),
        test_games=["G0", "G1"],
    )
    return repo, data
