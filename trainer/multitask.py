"""``livetopic train --layer multitask``: the research's three layers as one network, one shared encoder with 12
outputs split into three heads (general 4, game 5, sentiment 3), served from one forward pass
(:mod:`worker.model.heads`).

Rows: every comment of every game. Each head learns from its own rows only (:attr:`~.data.Dataset.mask`):
general from every comment (BCE with logits, soft or 0/1 targets as ``--targets`` says); game from the comments
whose teacher has Game on (BCE with logits); sentiment from the comments of the games whose rows carry the three
scores (cross-entropy against the top teacher class, as the sentiment layer learns it). The loss is the sum of
the three heads' mean losses. An epoch's validation score (the epoch kept, the publish gate) is the mean of the
heads' micro F1, each on its own rows: general and game at thresholds tuned per label, sentiment as the top
class."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from worker.model.heads import HeadSpec, head_columns

from .data import Dataset, load_dataset
from .layers import LAYERS
from .loop import Objective
from .metrics import apply_thresholds, compute_metrics, tune_thresholds
from .modeling import Built, predict_probs

__all__ = [
    "HEADS",
    "LOSS",
    "OBJECTIVE",
    "heads_loss",
    "heads_metrics",
    "load_multitask",
    "masked_loss",
    "validate_heads",
]

LOSS = "per head: BCEWithLogitsLoss (general; game on the Game rows) + CrossEntropyLoss (sentiment, top class)"
HEADS = [
    HeadSpec(name="general", labels=LAYERS["general"]),
    HeadSpec(name="game", labels=LAYERS["game"], when="general.Game"),
    HeadSpec(name="sentiment", labels=LAYERS["sentiment"], multi_label=False),
]


def _columns() -> list[tuple[HeadSpec, slice]]:
    return list(zip(HEADS, head_columns(HEADS), strict=True))


def load_multitask(paths: Iterable[Path | str]) -> Dataset:
    """Every comment with the 12 targets and the mask of the rows each head learns from."""
    labels = [label for head in HEADS for label in head.labels]
    data = load_dataset(paths, labels, optional=LAYERS["sentiment"])
    mask = np.ones(data.targets.shape, dtype=bool)
    _, (_, game), (_, sentiment) = _columns()
    mask[:, game] = data.targets[:, game].max(axis=1, keepdims=True) > 0.5  # Game on: any of the five
    scored = ~np.isnan(data.targets[:, sentiment]).any(axis=1)
    mask[:, sentiment] = scored[:, None]
    top = np.zeros((len(data), sentiment.stop - sentiment.start), dtype=np.float32)
    top[np.flatnonzero(scored), np.nan_to_num(data.targets[scored][:, sentiment]).argmax(axis=1)] = 1.0
    data.targets[:, sentiment] = top  # the top class, as the sentiment layer has it; 0 where not scored
    data.mask = mask
    return data


def heads_loss(logits: Any, targets: Any) -> Any:
    """The batch's loss: each head's mean loss over its rows (targets NaN elsewhere), summed over the heads."""
    import torch
    import torch.nn.functional as F

    total = torch.zeros((), device=logits.device)
    for head, columns in _columns():
        target = targets[:, columns]
        rows = ~torch.isnan(target[:, 0])
        if not bool(rows.any()):
            continue
        if head.multi_label:
            total = total + F.binary_cross_entropy_with_logits(logits[rows][:, columns], target[rows])
        else:
            total = total + F.cross_entropy(logits[rows][:, columns], target[rows].argmax(dim=1))
    return total


def _head_metrics(
    head: HeadSpec, truth: np.ndarray, probs: np.ndarray, thresholds: np.ndarray | None
) -> tuple[dict[str, Any], np.ndarray]:
    if not head.multi_label:
        predicted = np.zeros(probs.shape, dtype=bool)
        predicted[np.arange(len(probs)), probs.argmax(axis=1)] = True
        return compute_metrics(truth, predicted, head.labels, probs), np.full(len(head.labels), 0.5)
    if thresholds is None:
        thresholds = tune_thresholds(truth, probs)
    metrics = compute_metrics(truth, apply_thresholds(probs, thresholds), head.labels, probs, list(thresholds))
    return metrics, thresholds


def heads_metrics(
    probs: np.ndarray, data: Dataset, thresholds: np.ndarray | None = None
) -> tuple[dict[str, Any], np.ndarray]:
    """(metrics, thresholds) of the 12 outputs' ``probs`` on ``data``, each head on its own rows; ``thresholds``
    None: tuned on these rows. ``micro_f1``, ``macro_f1``, ``exact_match``: the means over the heads;
    ``per_label``: every output's, on its head's rows; ``heads``: each head's own."""
    assert data.mask is not None
    heads: dict[str, dict[str, Any]] = {}
    chosen: list[np.ndarray] = []
    per_label: dict[str, Any] = {}
    for head, columns in _columns():
        rows = data.mask[:, columns.start]
        given = None if thresholds is None else thresholds[columns]
        metrics, used = _head_metrics(head, data.hard[rows][:, columns], probs[rows][:, columns], given)
        heads[head.name] = {k: metrics[k] for k in ("n", "micro_f1", "macro_f1", "exact_match")}
        per_label.update(metrics["per_label"])
        chosen.append(used)

    def mean(key: str) -> float | None:
        values = [m[key] for m in heads.values() if m[key] is not None]
        return float(np.mean(values)) if values else None

    out = {
        "n": len(data),
        "micro_f1": mean("micro_f1"),
        "macro_f1": mean("macro_f1"),
        "exact_match": mean("exact_match"),
        "macro_roc_auc": None,
        "per_label": per_label,
        "heads": heads,
    }
    return out, np.concatenate(chosen)


def masked_loss(probs: np.ndarray, data: Dataset) -> float:
    """The validation loss: each head's mean (BCE, or cross-entropy of the top class) on its rows, summed."""
    assert data.mask is not None
    total = 0.0
    for head, columns in _columns():
        rows = data.mask[:, columns.start]
        if not rows.any():
            continue
        p = np.clip(probs[rows][:, columns].astype(np.float64), 1e-7, 1 - 1e-7)
        t = data.targets[rows][:, columns]
        if head.multi_label:
            total += float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean())
        else:
            logits = np.log(p) - np.log1p(-p)
            logits -= logits.max(axis=1, keepdims=True)
            log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            total += float(-(t * log_softmax).sum(axis=1).mean())
    return total


def validate_heads(
    built: Built, val_set: Dataset, val_ids: list[list[int]]
) -> tuple[dict[str, Any], np.ndarray, dict[str, Any]]:
    """:func:`~.loop.validate` for the heads: each on its own rows (metrics, thresholds, log fields)."""
    probs = predict_probs(built.model, val_ids, built.device, built.pad_id, built.autocast_dtype)
    metrics, tuned = heads_metrics(probs, val_set)
    fields = {
        "val_loss": masked_loss(probs, val_set),
        **{key: metrics[key] for key in ("micro_f1", "macro_f1", "exact_match", "heads")},
        "per_label_f1": {k: v["f1"] for k, v in metrics["per_label"].items()},
        "thresholds": dict(zip(val_set.labels, tuned.tolist(), strict=True)),
    }
    return metrics, tuned, fields


OBJECTIVE = Objective(loss=heads_loss, validate=validate_heads)
