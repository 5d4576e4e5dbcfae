"""Scoring on labelled data: a published version, the TF-IDF baseline or the keyword labeller.

All three use :func:`trainer.metrics.compute_metrics` on the same rows. ``split`` picks which games:
``all``, or ``train``/``val``/``test`` of :func:`trainer.data.split_games`. For a version, the games
recorded in its manifest are used (so ``--split test`` scores exactly the games the training run held
out); otherwise the fractions given (defaults: validation 0.1, test 0.2, as ``train --test-fraction 0.2``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from worker.errors import ConfigError

from .data import Dataset, Split, load_dataset, split_games
from .metrics import apply_thresholds, compute_metrics

__all__ = ["SPLITS", "evaluate_baseline", "evaluate_labeller", "evaluate_model", "pick_split"]

log = logging.getLogger(__name__)

SPLITS = ("all", "train", "val", "test")
DEFAULT_VAL_FRACTION = 0.1
DEFAULT_TEST_FRACTION = 0.2


def _split_of(data: Dataset, recorded: dict[str, Any] | None, val_fraction: float | None,
              test_fraction: float | None) -> Split:
    if recorded and val_fraction is None and test_fraction is None and (
            recorded.get("test_games") or recorded.get("val_games")):
        present = set(data.groups)
        val = [g for g in recorded.get("val_games") or [] if g in present]
        test = [g for g in recorded.get("test_games") or [] if g in present]
        train = sorted(present - set(val) - set(test))
        return Split(train, sorted(val), sorted(test))
    return split_games(data.groups,
                       val_fraction=DEFAULT_VAL_FRACTION if val_fraction is None else val_fraction,
                       test_fraction=DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction)


def pick_split(data: Dataset, split: str, recorded: dict[str, Any] | None = None,
               val_fraction: float | None = None, test_fraction: float | None = None) -> tuple[Dataset, Split]:
    """The rows of ``split`` and the game assignment used."""
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    games = _split_of(data, recorded, val_fraction, test_fraction)
    if split == "all":
        return data, games
    chosen = {"train": games.train, "val": games.val, "test": games.test}[split]
    if not chosen:
        raise ConfigError(f"--split {split}: no {split} games in the data (fewer games than needed, or a "
                          "fraction of 0)")
    return data.in_groups(chosen), games


def _with_source(metrics: dict[str, Any], **source: Any) -> dict[str, Any]:
    return {**source, **metrics}


def evaluate_model(model_path: Path | str, data_paths: Sequence[Path | str], *, split: str = "all",
                   labels: Sequence[str] | None = None, device: str = "auto", dtype: str = "auto",
                   val_fraction: float | None = None, test_fraction: float | None = None,
                   batch_size: int = 64) -> dict[str, Any]:
    """Metrics of a version on ``data_paths`` with the version's thresholds and preprocessing. The data's
    label columns are matched to the model's labels by name (``labels`` restricts to some of them).
    ``dtype`` auto is what the worker serves with (ONNX Runtime int8 on CPUs unless the manifest records its
    agreement below 99.5%)."""
    from worker.model.load import load_model

    model = load_model(model_path, device=device, dtype=dtype)
    wanted = list(labels) if labels else list(model.labels)
    unknown = sorted(set(wanted) - set(model.labels))
    if unknown:
        raise ConfigError(f"labels not in the model: {', '.join(unknown)} (model labels: {model.labels})")
    data = load_dataset(data_paths, wanted)
    rows, _ = pick_split(data, split, model.manifest.training_args, val_fraction, test_fraction)
    probs = model.predict_texts(rows.texts, batch_size=batch_size)
    columns = [model.labels.index(label) for label in wanted]
    scores = probs[:, columns]
    thresholds = model.thresholds[columns]
    metrics = compute_metrics(rows.hard, apply_thresholds(scores, thresholds), wanted, scores,
                              thresholds.tolist())
    return _with_source(metrics, source="model", model=str(model.path), version=model.version,
                        dtype=model.dtype_name, backend=model.backend_name, split=split,
                        games=len(set(rows.groups)), data_fingerprint=data.fingerprint)


def evaluate_baseline(data_paths: Sequence[Path | str], *, split: str = "test", labels: Sequence[str] | None = None,
                      val_fraction: float | None = None, test_fraction: float | None = None,
                      preprocess: str = "raw", seed: int = 0) -> dict[str, Any]:
    """Fit the TF-IDF baseline on the train games (thresholds on the validation games) and score ``split``."""
    from worker.text import Preprocessor

    from .baseline import fit_baseline

    data = load_dataset(data_paths, labels)
    rows, games = pick_split(data, split, None, val_fraction, test_fraction)
    train, val = data.in_groups(games.train), data.in_groups(games.val)
    if not len(train):
        raise ConfigError("the baseline needs training games")
    baseline = fit_baseline(train, val if len(val) else None, preprocess=Preprocessor(preprocess), seed=seed)  # type: ignore[arg-type]
    metrics = baseline.evaluate(rows)
    return _with_source(metrics, source="baseline", baseline="tfidf-char-1-3+logreg", split=split,
                        games=len(set(rows.groups)), train_games=len(games.train), n_train=len(train),
                        data_fingerprint=data.fingerprint)


def evaluate_labeller(lexicon_dir: Path | str, data_paths: Sequence[Path | str], *, split: str = "all",
                      val_fraction: float | None = None, test_fraction: float | None = None) -> dict[str, Any]:
    """Metrics of the keyword labeller (labels Cheer, Game, Broadcast, Chat; matched by name, derived from
    the chat topics where the data has no such columns)."""
    from .labeller import LABELS, KeywordLabeller

    labeller = KeywordLabeller.from_dir(lexicon_dir)
    data = load_dataset(data_paths, list(LABELS))
    rows, _ = pick_split(data, split, None, val_fraction, test_fraction)
    predicted = labeller.labels_of(rows.texts)
    metrics = compute_metrics(rows.hard, predicted, list(LABELS), predicted.astype(float))
    return _with_source(metrics, source="labeller", lexicon=str(lexicon_dir), split=split,
                        games=len(set(rows.groups)), data_fingerprint=data.fingerprint)
