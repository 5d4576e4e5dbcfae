"""From probabilities to labels, the one way: over each label's threshold (multi-label, in model order) or
the top label (single-label)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["decide", "label_names"]


def decide(probs: np.ndarray, thresholds: np.ndarray, multi_label: bool) -> np.ndarray:
    """Boolean ``[rows, labels]``: which labels each row gets."""
    if multi_label:
        return np.asarray(probs >= thresholds)
    hits = np.zeros(probs.shape, dtype=bool)
    if probs.size:
        hits[np.arange(probs.shape[0]), probs.argmax(axis=1)] = True
    return hits


def label_names(hits: np.ndarray, labels: Sequence[str]) -> list[list[str]]:
    """The label names of each row of ``hits`` (as :func:`decide` returns it), in model order. One
    :func:`numpy.nonzero` over the batch (row-major, so each row's labels come in model order), not one per row:
    on the worker's event loop, for every comment."""
    names: list[list[str]] = [[] for _ in range(hits.shape[0])]
    rows, columns = np.nonzero(hits)
    for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
        names[row].append(labels[column])
    return names
