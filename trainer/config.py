"""The options of a training run and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.errors import ConfigError
from worker.text import MODES

from .data import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION

__all__ = ["TrainConfig", "TrainResult"]


@dataclass
class TrainConfig:
    """Every option of ``livetopic train``; recorded in the manifest's ``training_args``."""

    labels: list[str] | None = None
    base: str | None = None
    preset: str = "mini"
    preprocess: str | None = None  # None: the base version's, else "raw"
    lowercase: bool = True
    epochs: int = 10
    max_minutes: float | None = None
    seed: int = 0
    lr: float | None = None  # None: 1e-5 from a base model, more from scratch (see modeling.default_lr)
    batch_size: int = 32
    max_length: int = 64
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = DEFAULT_TEST_FRACTION
    val_games: list[str] | None = None
    test_games: list[str] | None = None
    targets: str = "auto"  # soft | hard | auto (soft when the data has soft scores)
    patience: int = 5
    warmup: float = 0.06
    weight_decay: float = 0.01
    device: str = "auto"
    threads: int | None = None
    limit: int | None = None
    dropout: float | None = None  # from scratch: hidden and attention dropout (None: 0.1)
    run_dir: str | None = None
    name: str = "livetopic"
    progress: bool = True
    log_every: int = 50
    agreement_n: int = 2000  # validation comments for the dtype agreement check before publishing (0: skip)
    force: bool = False  # publish even when worse than the version it replaces (else: a candidate)
    change_labels: bool = False  # a different label set is intended (recorded in the manifest)

    def check(self) -> None:
        if self.preprocess is not None and self.preprocess not in MODES:
            raise ConfigError(f"--preprocess must be one of {', '.join(MODES)}, got {self.preprocess!r}")
        if self.targets not in ("soft", "hard", "auto"):
            raise ConfigError(f"--targets must be soft, hard or auto, got {self.targets!r}")
        if self.epochs < 1 or self.batch_size < 1 or not 8 <= self.max_length <= 4096:
            raise ConfigError("--epochs and --batch-size must be >= 1, --max-length in [8, 4096]")
        if not (0.0 <= self.val_fraction < 1.0 and 0.0 <= self.test_fraction < 1.0):
            raise ConfigError("--val-fraction and --test-fraction must be in [0, 1)")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError("--max-minutes must be > 0")
        if self.agreement_n < 0:
            raise ConfigError("--agreement-n must be >= 0")


@dataclass
class TrainResult:
    version: int  # the version number (of REPO, or of REPO/candidates when not published)
    repo: Path
    metrics: dict[str, Any]
    thresholds: dict[str, float]
    run_dir: Path
    published: bool = True
    reason: str = ""  # why it was published, or kept as a candidate
    path: Path = Path()  # the version's directory
