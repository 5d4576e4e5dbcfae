"""Multi-label metrics and per-label threshold tuning (numpy only, so they run without warnings).

Conventions: a label with neither true nor predicted positives has no F1 (``None``) and is left out
of the macro average; ROC AUC is ``None`` for a label whose truth is constant. A prediction is on when
its score is >= the label's threshold, as in :meth:`worker.model.LoadedModel.decide`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "MIN_POSITIVES",
    "THRESHOLD_GRID",
    "apply_thresholds",
    "compute_metrics",
    "roc_auc",
    "summary_line",
    "threshold_spread",
    "tune_thresholds",
]

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
MIN_POSITIVES = 5  # a game's own best threshold for a label counts where the game has this many of its positives


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with tied scores averaged); None if truth is constant."""
    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(truth.sum())
    n_neg = truth.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, dtype=np.float64)
    # average 1-based ranks over runs of equal scores
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [scores.size]))
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    u = ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _f1(tp: int, fp: int, fn: int) -> float | None:
    denominator = 2 * tp + fp + fn
    return None if denominator == 0 else 2 * tp / denominator


def apply_thresholds(scores: np.ndarray, thresholds: np.ndarray | Sequence[float]) -> np.ndarray:
    return np.asarray(scores) >= np.asarray(thresholds, dtype=np.float64)[None, :]


def compute_metrics(
    truth: np.ndarray,
    predicted: np.ndarray,
    labels: Sequence[str],
    scores: np.ndarray | None = None,
    thresholds: Sequence[float] | None = None,
) -> dict[str, Any]:
    """``truth``/``predicted``: boolean [rows, labels]; ``scores`` (optional) for ROC AUC.

    Returns ``n``, ``exact_match`` (all labels of a row right), ``micro_f1``, ``micro_precision``,
    ``micro_recall``, ``macro_f1``, ``macro_roc_auc`` and ``per_label`` {label: {f1, precision, recall,
    support, predicted, false_positives, false_negatives, roc_auc[, threshold]}}.
    """
    truth = np.asarray(truth, dtype=bool)
    predicted = np.asarray(predicted, dtype=bool)
    if truth.shape != predicted.shape or truth.ndim != 2 or truth.shape[1] != len(labels):
        raise ValueError(f"shape mismatch: truth {truth.shape}, predicted {predicted.shape}, {len(labels)} labels")
    tp = (truth & predicted).sum(axis=0)
    fp = (~truth & predicted).sum(axis=0)
    fn = (truth & ~predicted).sum(axis=0)
    per_label: dict[str, dict[str, Any]] = {}
    f1s: list[float] = []
    aucs: list[float] = []
    for j, label in enumerate(labels):
        f1 = _f1(int(tp[j]), int(fp[j]), int(fn[j]))
        auc = roc_auc(truth[:, j], scores[:, j]) if scores is not None else None
        entry: dict[str, Any] = {
            "f1": f1,
            "precision": float(tp[j] / (tp[j] + fp[j])) if tp[j] + fp[j] else None,
            "recall": float(tp[j] / (tp[j] + fn[j])) if tp[j] + fn[j] else None,
            "support": int(truth[:, j].sum()),
            "predicted": int(predicted[:, j].sum()),
            "false_positives": int(fp[j]),
            "false_negatives": int(fn[j]),
            "roc_auc": auc,
        }
        if thresholds is not None:
            entry["threshold"] = float(thresholds[j])
        per_label[label] = entry
        if f1 is not None:
            f1s.append(f1)
        if auc is not None:
            aucs.append(auc)
    all_tp, all_fp, all_fn = int(tp.sum()), int(fp.sum()), int(fn.sum())
    n = int(truth.shape[0])
    return {
        "n": n,
        "exact_match": float((truth == predicted).all(axis=1).mean()) if n else None,
        "micro_f1": _f1(all_tp, all_fp, all_fn),
        "micro_precision": all_tp / (all_tp + all_fp) if all_tp + all_fp else None,
        "micro_recall": all_tp / (all_tp + all_fn) if all_tp + all_fn else None,
        "macro_f1": float(np.mean(f1s)) if f1s else None,
        "macro_roc_auc": float(np.mean(aucs)) if aucs else None,
        "per_label": per_label,
    }


def tune_thresholds(
    truth: np.ndarray, scores: np.ndarray, grid: np.ndarray = THRESHOLD_GRID, default: float = 0.5
) -> np.ndarray:
    """Per label, the threshold on ``grid`` with the best F1 (ties: the one nearest ``default``).

    A label without positives in ``truth`` keeps ``default``.
    """
    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    out = np.full(truth.shape[1], default, dtype=np.float64)
    # order candidates by distance from the default so that argmax picks the nearest among equals
    candidates = grid[np.argsort(np.abs(grid - default), kind="stable")]
    for j in range(truth.shape[1]):
        positives = truth[:, j]
        if not positives.any():
            continue
        hits = scores[:, j][None, :] >= candidates[:, None]  # [grid, rows]
        tp = (hits & positives[None, :]).sum(axis=1)
        fp = (hits & ~positives[None, :]).sum(axis=1)
        fn = positives.sum() - tp
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        out[j] = float(candidates[int(np.argmax(f1))])
    return out


def _f1_at(truth: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    hits = scores >= threshold
    tp = int((hits & truth).sum())
    return 2 * tp / max(2 * tp + int((hits & ~truth).sum()) + int((~hits & truth).sum()), 1)


def threshold_spread(
    truth: np.ndarray,
    scores: np.ndarray,
    groups: Sequence[str],
    thresholds: Sequence[float],
    min_positives: int = MIN_POSITIVES,
) -> list[dict[str, Any]]:
    """Per label, how far its best threshold moves from game to game. Each game with at least ``min_positives``
    of the label's positives has its own best threshold (:func:`tune_thresholds` on its rows alone); returned:
    ``games`` (how many counted), ``min``, ``median``, ``max`` and ``std`` of those thresholds, ``pooled`` (the best
    threshold on all rows together; None without positives) and ``f1_gain`` (the mean F1 a game would gain with
    its own best threshold instead of ``thresholds``: what the spread costs)."""
    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    games = np.asarray(groups)
    pooled = tune_thresholds(truth, scores)
    own = {game: tune_thresholds(truth[games == game], scores[games == game]) for game in sorted(set(groups))}
    out: list[dict[str, Any]] = []
    for j in range(truth.shape[1]):
        found, gains = [], []
        for game, best in own.items():
            rows = games == game
            if int(truth[rows, j].sum()) < min_positives:
                continue
            found.append(float(best[j]))
            column, scored = truth[rows, j], scores[rows, j]
            gains.append(_f1_at(column, scored, best[j]) - _f1_at(column, scored, float(thresholds[j])))
        entry: dict[str, Any] = {"games": len(found), "pooled": float(pooled[j]) if truth[:, j].any() else None}
        if found:
            values = np.asarray(found)
            entry.update(
                min=float(values.min()),
                median=float(np.median(values)),
                max=float(values.max()),
                std=float(values.std()),
                f1_gain=float(np.mean(gains)),
            )
        out.append(entry)
    return out


def summary_line(metrics: dict[str, Any]) -> str:
    """A one-line human summary: n, micro/macro F1, exact match."""

    def fmt(value: Any) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    return (
        f"n={metrics['n']} micro_f1={fmt(metrics['micro_f1'])} macro_f1={fmt(metrics['macro_f1'])} "
        f"exact_match={fmt(metrics['exact_match'])}"
    )
