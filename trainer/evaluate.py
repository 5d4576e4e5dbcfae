"""Scoring on labelled data: a published version, the TF-IDF baseline or the keyword labeller.

All three use :func:`trainer.metrics.compute_metrics` on the same rows. ``split`` picks which games: ``all``, or
``train``/``val``/``test``. A trained version records the games it trained and validated on in its manifest, and
is scored only on games it never saw (``test``, its default), or, labelled as such, on its validation games
(``val``); scoring games it trained on is refused. Everything else (the baseline, the labeller, an untrained
version) splits the data with :func:`trainer.data.split_games` at the fractions given, by default the same ones
as ``train`` (:data:`~trainer.data.DEFAULT_VAL_FRACTION`, :data:`~trainer.data.DEFAULT_TEST_FRACTION`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from worker.errors import ConfigError

from .data import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION, Dataset, Split, load_dataset, split_games
from .disagree import DEFAULT_EXAMPLES, DEFAULT_WIDTH, disagreements
from .metrics import apply_thresholds, compute_metrics, threshold_spread

if TYPE_CHECKING:
    from worker.model.runtime import LoadedModel

__all__ = [
    "SPLITS",
    "evaluate_baseline",
    "evaluate_labeller",
    "evaluate_model",
    "pick_split",
    "recorded_split",
    "report",
    "score_model",
]

log = logging.getLogger(__name__)

SPLITS = ("all", "train", "val", "test")


def recorded_split(data: Dataset, training_args: dict[str, Any]) -> Split | None:
    """The games of ``data`` a version trained on, validated on, and never saw (test), from its manifest's
    training arguments; None for a version that records no training games (untrained, or not ours)."""
    if not training_args.get("train_games"):
        return None
    present = set(data.groups)
    train = present & set(training_args["train_games"])
    val = (present & set(training_args.get("val_games") or [])) - train
    return Split(sorted(train), sorted(val), sorted(present - train - val))


def _chosen(games: Split, split: str) -> list[str]:
    if split == "all":
        return sorted({*games.train, *games.val, *games.test})
    return {"train": games.train, "val": games.val, "test": games.test}[split]


def pick_split(
    data: Dataset, split: str, val_fraction: float | None = None, test_fraction: float | None = None
) -> tuple[Dataset, Split]:
    """The rows of ``split`` (games chosen by :func:`split_games` at the given or default fractions) and the
    game assignment used."""
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    games = split_games(
        data.groups,
        val_fraction=DEFAULT_VAL_FRACTION if val_fraction is None else val_fraction,
        test_fraction=DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction,
    )
    chosen = _chosen(games, split)
    if not chosen:
        raise ConfigError(
            f"--split {split}: no {split} games in the data (fewer games than needed, or a fraction of 0)"
        )
    return data.in_groups(chosen), games


def _held_out(data: Dataset, games: Split) -> str:
    total = len(set(data.groups))
    if not games.val and not games.test:
        return f"it trained on all {total} games of this data, validating on the last rows of its training data"
    return f"it trained on {len(games.train)}, validated on {len(games.val)} of its {total} games"


def _version_rows(data: Dataset, games: Split, split: str, version: int) -> Dataset:
    """The rows of ``split`` for a version that recorded its games: never the games it trained on."""
    chosen = _chosen(games, split)
    if games.train and set(chosen) & set(games.train):
        raise ConfigError(
            f"version {version} was trained on {len(games.train)} of these games: scoring them says nothing about "
            f"its quality; use --split test ({len(games.test)} games it never saw) or --split val"
        )
    if not chosen:
        raise ConfigError(
            f"--split {split}: the data has no game that version {version} "
            f"{'never saw' if split == 'test' else 'validated on'} ({_held_out(data, games)}); "
            "give data with more games"
        )
    if split == "val":
        log.warning(
            "scoring version %d on its validation games: its thresholds and best epoch were chosen on "
            "them, so these numbers are optimistic",
            version,
        )
    return data.in_groups(chosen)


def _model_scores(model: LoadedModel, rows: Dataset, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """A loaded version's scores on ``rows`` for ``labels`` (all among the model's), and its thresholds."""
    columns = [model.labels.index(label) for label in labels]
    return model.predict_texts(rows.texts)[:, columns], model.thresholds[columns]


def score_model(model: LoadedModel, rows: Dataset, labels: Sequence[str]) -> dict[str, Any]:
    """Metrics of a loaded version on ``rows`` (whose label columns are ``labels``, all among the model's),
    with the version's own thresholds."""
    scores, thresholds = _model_scores(model, rows, labels)
    return compute_metrics(rows.hard, apply_thresholds(scores, thresholds), list(labels), scores, thresholds.tolist())


def report(
    rows: Dataset,
    scores: np.ndarray,
    thresholds: np.ndarray | None,
    *,
    examples: int = DEFAULT_EXAMPLES,
    example_width: int = DEFAULT_WIDTH,
) -> dict[str, Any]:
    """What ``evaluate`` says of a scorer on ``rows``: the metrics at ``thresholds`` (None: ``scores`` are its 0/1
    decisions), with each label's spread of best thresholds across the games (where it has thresholds), and
    ``disagreements``: example comments where it and the teacher disagree."""
    predicted = apply_thresholds(scores, thresholds) if thresholds is not None else np.asarray(scores) > 0.5
    listed = None if thresholds is None else [float(t) for t in thresholds]
    metrics = compute_metrics(rows.hard, predicted, rows.labels, scores, listed)
    if listed is not None:
        spreads = threshold_spread(rows.hard, scores, rows.groups, listed)
        for entry, spread in zip(metrics["per_label"].values(), spreads, strict=True):
            entry["threshold_spread"] = spread
    metrics["disagreements"] = disagreements(rows, predicted, scores, examples=examples, width=example_width)
    return metrics


def _with_source(metrics: dict[str, Any], **source: Any) -> dict[str, Any]:
    return {**source, **metrics}


def evaluate_model(
    model_path: Path | str,
    data_paths: Sequence[Path | str],
    *,
    split: str | None = None,
    labels: Sequence[str] | None = None,
    device: str = "auto",
    dtype: str = "auto",
    val_fraction: float | None = None,
    test_fraction: float | None = None,
    examples: int = DEFAULT_EXAMPLES,
    example_width: int = DEFAULT_WIDTH,
) -> dict[str, Any]:
    """Metrics of a version on ``data_paths`` with the version's thresholds and preprocessing. The data's
    label columns are matched to the model's labels by name (``labels`` restricts to some of them).
    ``dtype`` auto is what the worker serves with (ONNX Runtime int8 on CPUs unless the manifest records its
    agreement below 99.5%). ``split`` defaults to ``test`` for a version that records its games (the games it
    never saw), else ``all``."""
    from worker.model.load import load_version, locate_model

    vdir, manifest, number = locate_model(model_path)  # the rows first: a mistake is said before a model loads
    wanted = list(labels) if labels else list(manifest.labels)
    unknown = sorted(set(wanted) - set(manifest.labels))
    if unknown:
        raise ConfigError(f"labels not in the model: {', '.join(unknown)} (model labels: {manifest.labels})")
    data = load_dataset(data_paths, wanted)
    games = recorded_split(data, manifest.training_args)
    if games is None:
        split = split or "all"
        rows, _ = pick_split(data, split, val_fraction, test_fraction)
    else:
        if val_fraction is not None or test_fraction is not None:
            raise ConfigError(
                f"version {number} records the games it trained and validated on; "
                "--val-fraction/--test-fraction apply to the baseline, the labeller and untrained "
                "versions"
            )
        split = split or "test"
        rows = _version_rows(data, games, split, number)
    model = load_version(vdir, manifest, number, device=device, dtype=dtype)
    model.smoke_test()
    scores, thresholds = _model_scores(model, rows, wanted)
    metrics = report(rows, scores, thresholds, examples=examples, example_width=example_width)
    extra = {"seen_by_model": "validation"} if games is not None and split == "val" else {}
    return _with_source(
        metrics,
        source="model",
        model=str(model.path),
        version=model.version,
        dtype=model.dtype_name,
        backend=model.backend_name,
        split=split,
        games=len(set(rows.groups)),
        data_fingerprint=data.fingerprint,
        **extra,
    )


def evaluate_baseline(
    data_paths: Sequence[Path | str],
    *,
    split: str = "test",
    labels: Sequence[str] | None = None,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
    preprocess: str = "raw",
    seed: int = 0,
    examples: int = DEFAULT_EXAMPLES,
    example_width: int = DEFAULT_WIDTH,
) -> dict[str, Any]:
    """Fit the TF-IDF baseline on the train games (thresholds on the validation games) and score ``split``."""
    from worker.text import Preprocessor

    from .baseline import fit_baseline

    data = load_dataset(data_paths, labels)
    rows, games = pick_split(data, split, val_fraction, test_fraction)
    train, val = data.in_groups(games.train), data.in_groups(games.val)
    if not len(train):
        raise ConfigError("the baseline needs training games")
    keep_case = Preprocessor(preprocess, lowercase=False)  # type: ignore[arg-type]
    baseline = fit_baseline(train, val if len(val) else None, preprocess=keep_case, seed=seed)
    scores = baseline.predict_proba(rows.texts)
    metrics = report(rows, scores, baseline.thresholds, examples=examples, example_width=example_width)
    return _with_source(
        metrics,
        source="baseline",
        baseline="tfidf-char-1-3+logreg",  # letter case kept (trainer/baseline.py)
        split=split,
        games=len(set(rows.groups)),
        train_games=len(games.train),
        n_train=len(train),
        data_fingerprint=data.fingerprint,
    )


def evaluate_labeller(
    lexicon_dir: Path | str,
    data_paths: Sequence[Path | str],
    *,
    split: str = "all",
    val_fraction: float | None = None,
    test_fraction: float | None = None,
    examples: int = DEFAULT_EXAMPLES,
    example_width: int = DEFAULT_WIDTH,
) -> dict[str, Any]:
    """Metrics of the keyword labeller (labels Cheer, Game, Broadcast, Chat; matched by name, derived from
    the chat topics where the data has no such columns)."""
    from .labeller import LABELS, KeywordLabeller

    labeller = KeywordLabeller.from_dir(lexicon_dir)
    data = load_dataset(data_paths, list(LABELS))
    rows, _ = pick_split(data, split, val_fraction, test_fraction)
    predicted = labeller.labels_of(rows.texts)
    metrics = report(rows, predicted.astype(float), None, examples=examples, example_width=example_width)
    return _with_source(
        metrics,
        source="labeller",
        lexicon=str(lexicon_dir),
        split=split,
        games=len(set(rows.groups)),
        data_fingerprint=data.fingerprint,
    )
