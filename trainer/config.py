"""The options of a training run (``livetopic train``'s flags, declared once) and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from worker.model.presets import PRESETS
from worker.options import Flag, Options
from worker.settings import Device
from worker.text import Mode

from .data import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION

__all__ = ["BASE_RECIPE", "LOSS", "SCRATCH_DEFAULTS", "TrainConfig", "TrainOptions", "TrainResult", "names"]

_NAMES = Flag(metavar="LABEL")
LOSS = "BCEWithLogitsLoss"  # the one loss of every run, on soft or 0/1 targets (trainer/loop.py)
# The seed card's fine-tuning recipe (the research's general-layer model card: lr 1e-5, batch 32, BCE, 10 epochs):
# what a run with --base defaults to. A from-scratch run has its own defaults (its peak learning rate by preset);
# changing these leaves the other alone.
BASE_RECIPE: dict[str, Any] = {"lr": 1e-5, "batch_size": 32, "epochs": 10}
SCRATCH_DEFAULTS: dict[str, Any] = {"batch_size": 32, "epochs": 10}
SCRATCH_LR = {"tiny": 2e-3, "mini": 5e-4, "small": 5e-4, "bert-base-chinese": 1e-4}  # small random models need more


def names(values: Any) -> list[str] | None:
    """``--labels a b`` or ``--labels a,b`` → [a, b]; none given → None."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    found = [name.strip() for value in values for name in str(value).split(",") if name.strip()]
    return found or None


class TrainConfig(Options):
    """Every option of a training run; recorded in the manifest's ``training_args``."""

    base: Annotated[str | None, Flag(metavar="DIR")] = Field(
        None,
        description="start from a local Hugging Face model directory, a version REPO/N or a repository (its latest "
        "version); default: from scratch. With a base, --lr, --batch-size and --epochs default to the seed card's "
        f"recipe (lr {BASE_RECIPE['lr']:g}, batch {BASE_RECIPE['batch_size']}, {BASE_RECIPE['epochs']} epochs, "
        f"{LOSS}): the recommended path where a pretrained model is at hand",
    )
    labels: Annotated[list[str] | None, _NAMES] = Field(
        None, description="label columns (space- or comma-separated); default: every non-metadata numeric column"
    )
    layer: Literal["general", "game", "sentiment", "multitask"] | None = Field(
        None,
        description="one of the research's three layers, from the chat exports' topics (instead of --labels): "
        "general (Cheer, Game, Broadcast, Chat), game (Player, Team, Judge, Coach, Tactics, on the game comments "
        "only) or sentiment (negative, neutral, positive: the top one, from the games that have them; served as "
        "one class per comment); or multitask: all three as heads of one model, served from one forward pass; "
        "the model's name defaults to the layer's",
    )
    preprocess: Mode | None = Field(None, description="text preprocessing mode (default: the base version's, else raw)")
    lowercase: bool = Field(
        False,
        description="lowercase the text (default: keep letter case, as the TVL teacher sees it; lowercasing cost "
        "the from-scratch model and the TF-IDF baseline points of micro F1 on its held-out games)",
    )
    epochs: int = Field(
        SCRATCH_DEFAULTS["epochs"],
        ge=1,
        description=f"maximum epochs (default {SCRATCH_DEFAULTS['epochs']} from scratch; with --base the seed card's "
        f"{BASE_RECIPE['epochs']})",
    )
    max_minutes: float | None = Field(None, gt=0, description="wall-clock budget of the whole run, minutes")
    seed: int = Field(0, description="random seed")
    lr: float = Field(
        SCRATCH_LR["mini"],
        gt=0,
        description=f"peak learning rate (default with --base the seed card's {BASE_RECIPE['lr']:g}; from scratch by "
        "preset: " + ", ".join(f"{k} {v:g}" for k, v in SCRATCH_LR.items()) + ")",
    )
    batch_size: int = Field(
        SCRATCH_DEFAULTS["batch_size"],
        ge=1,
        description=f"comments per training step (default {SCRATCH_DEFAULTS['batch_size']} from scratch; with --base "
        f"the seed card's {BASE_RECIPE['batch_size']})",
    )
    ngrams: bool = Field(
        True,
        description="blend a TF-IDF logistic regression over the token-id n-grams (orders 1-3) with the encoder, "
        "its share chosen on the validation games (multi-label versions; scikit-learn: the [train] extra)",
    )
    max_length: int = Field(64, ge=8, le=4096, description="tokens per comment, special tokens included")
    preset: Annotated[str, Flag(choices=tuple(PRESETS))] = Field(
        "mini",
        description="from-scratch model size: tiny (2x64), mini (6 layers x 128, default), small (4x256), "
        "bert-base-chinese (12x768)",
    )
    val_fraction: float = Field(
        DEFAULT_VAL_FRACTION,
        ge=0.0,
        lt=1.0,
        description=f"fraction of games for validation (default {DEFAULT_VAL_FRACTION}, as evaluate)",
    )
    test_fraction: float = Field(
        DEFAULT_TEST_FRACTION,
        ge=0.0,
        lt=1.0,
        description="fraction of games held out entirely, scored once at the end and by `evaluate --split test` "
        f"(default {DEFAULT_TEST_FRACTION}, as evaluate)",
    )
    val_games: Annotated[list[str] | None, Flag(metavar="GAME")] = Field(
        None, description="explicit validation games (file names)"
    )
    test_games: Annotated[list[str] | None, Flag(metavar="GAME")] = Field(
        None, description="explicit test games (file names)"
    )
    targets: Literal["auto", "soft", "hard"] = Field(
        "auto", description="train on the soft scores or on 0/1 (auto: soft when the data has soft scores)"
    )
    patience: int = Field(5, description="epochs without improvement before stopping")
    warmup: float = Field(0.06, description="warm-up fraction of the schedule")
    weight_decay: float = Field(0.01, description="AdamW weight decay")
    dropout: float | None = Field(None, description="from scratch: hidden and attention dropout (default 0.1)")
    device: Device = Field("auto", description="training device")
    threads: int | None = Field(None, description="torch CPU threads (default: torch's choice)")
    limit: int | None = Field(None, description="use at most N training rows (quick experiments)")
    agreement_n: int = Field(
        2000,
        ge=0,
        description="validation comments on which to check the label agreement of int8 and bfloat16 with float32 "
        "before publishing; recorded in the manifest, read by dtype=auto (0: skip)",
    )
    force: bool = Field(
        False,
        description="publish even when the new version scores below the one it replaces on the same validation "
        "games (default: keep it as a candidate in REPO/candidates/ and say why)",
    )
    change_labels: bool = Field(
        False,
        description="the label set differs from the version this one replaces, on purpose: publish it and let "
        "running workers swap it in (they refuse an unannounced label change)",
    )
    run_dir: str | None = Field(None, description="where the metrics log and curves go (default runs/<timestamp>)")
    name: str = Field("livetopic", description="model name recorded in the manifest")
    quiet: bool = Field(False, description="no progress bars")
    progress: bool = Field(
        False, description="progress bars even where stderr is not a terminal (by default only on one: not in logs)"
    )

    @field_validator("labels", "val_games", "test_games", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> list[str] | None:
        return names(value)

    @model_validator(mode="before")
    @classmethod
    def _recipe(cls, data: Any) -> Any:
        """The options not given (or None) take the recipe's defaults: the seed card's with --base, else the
        from-scratch ones (the learning rate by --preset)."""
        if not isinstance(data, dict):
            return data
        preset = data.get("preset") or cls.model_fields["preset"].default
        recipe = BASE_RECIPE if data.get("base") else {**SCRATCH_DEFAULTS, "lr": SCRATCH_LR.get(preset, 5e-4)}
        return {**data, **{k: v for k, v in recipe.items() if data.get(k) is None}}

    @model_validator(mode="before")
    @classmethod
    def _named_as_the_layer(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("layer") and data.get("name") in (None, "livetopic"):
            return {**data, "name": data["layer"]}
        return data

    @model_validator(mode="after")
    def _layer_or_labels(self) -> TrainConfig:
        if self.layer is not None and self.labels is not None:
            raise ValueError("--layer chooses the labels: give --layer or --labels, not both")
        return self


class TrainOptions(TrainConfig):
    """``livetopic train``: the run's options and what it reads and publishes into."""

    data: Annotated[list[Path], Flag(metavar="PATH")] = Field(
        description="labelled files (chat JSON, JSONL, CSV) or directories of them"
    )
    out: Annotated[Path, Flag(metavar="REPO")] = Field(description="model repository to publish into")


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
