"""Where a scorer and the teacher disagree, for ``evaluate``'s confusion view: per label, a few of the comments it
turned on that the teacher did not (false positives) and of those it missed (false negatives), the widest
disagreements first (the largest gap between its score and the teacher's), each distinct text once, cut to a width
(CJK characters take two columns: :func:`worker.display.fit`). The counts are in the metrics' ``per_label``."""

from __future__ import annotations

from typing import Any

import numpy as np

from worker.display import fit

from .data import Dataset

__all__ = ["DEFAULT_EXAMPLES", "DEFAULT_WIDTH", "disagreements"]

DEFAULT_EXAMPLES = 3
DEFAULT_WIDTH = 40


def _examples(rows: Dataset, j: int, wrong: np.ndarray, scores: np.ndarray, limit: int, width: int) -> list[Any]:
    gap = np.abs(scores[wrong, j] - rows.targets[wrong, j])
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i in wrong[np.argsort(-gap, kind="stable")]:
        if len(out) >= limit:
            break
        text = fit(rows.texts[i], width)
        if text in seen:
            continue
        seen.add(text)
        out.append(
            {
                "text": text,
                "game": rows.groups[i],
                "score": round(float(scores[i, j]), 4),
                "teacher": round(float(rows.targets[i, j]), 4),
            }
        )
    return out


def disagreements(
    rows: Dataset,
    predicted: np.ndarray,
    scores: np.ndarray,
    *,
    examples: int = DEFAULT_EXAMPLES,
    width: int = DEFAULT_WIDTH,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{label: {false_positives: [...], false_negatives: [...]}}: up to ``examples`` comments of each, as
    {text (cut to ``width`` columns), game, score (the scorer's), teacher (the data's value)}."""
    truth = rows.hard
    predicted = np.asarray(predicted, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for j, label in enumerate(rows.labels):
        out[label] = {
            kind: _examples(rows, j, np.flatnonzero(mask), scores, examples, width)
            for kind, mask in (
                ("false_positives", predicted[:, j] & ~truth[:, j]),
                ("false_negatives", ~predicted[:, j] & truth[:, j]),
            )
        }
    return out
