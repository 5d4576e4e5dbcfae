"""Fit a version's n-gram member (:mod:`worker.model.ngrams`) on the training rows' token ids, and choose its
share of the blend with the encoder on the validation games.

The member is TF-IDF over token-id n-grams (orders 1 to ``max_n``, those in at least ``min_df`` training
comments; smooth idf, sublinear term frequency, unit rows) and one L2-regularised logistic regression per label
on the teacher's 0/1 labels (scikit-learn's liblinear: the ``[train]`` extra, and NNCF's dependency in the base
install). The blend weight is the one with the best validation micro F1 at per-label tuned thresholds; a member
that does not help is left out.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from worker.errors import ConfigError
from worker.model.ngrams import NgramMember, NgramSpec, check_radix, ngram_keys

from .metrics import apply_thresholds, compute_metrics, tune_thresholds

__all__ = ["Blend", "available", "choose_blend", "fit_member"]

log = logging.getLogger(__name__)

WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)  # the encoder's share tried on the validation games; 1.0: no member


def _vocabulary(ids: Sequence[Sequence[int]], max_n: int, base: int, min_df: int) -> tuple[np.ndarray, np.ndarray]:
    """The n-gram keys in at least ``min_df`` rows (sorted) and their smooth idf."""
    row, key = ngram_keys(ids, max_n, base)
    order = np.lexsort((row, key))
    key, row = key[order], row[order]
    first = np.ones(len(key), dtype=bool)  # the first occurrence of a key in a row
    first[1:] = (key[1:] != key[:-1]) | (row[1:] != row[:-1])
    keys, df = np.unique(key[first], return_counts=True)
    keep = df >= min_df
    idf = np.log((1.0 + len(ids)) / (1.0 + df[keep])) + 1.0
    return keys[keep], idf.astype(np.float32)


def available() -> bool:
    """Whether the member's imports succeed (scikit-learn: the ``[train]`` extra; the base install has it through
    NNCF), asked through the one import the fit makes."""
    try:
        _sklearn()
    except ConfigError:
        return False
    return True


def _sklearn() -> tuple[type, type, type]:
    try:
        from scipy.sparse import csr_matrix
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise ConfigError(
            "the n-gram member needs scikit-learn: pip install 'livetopic[train]' (or train with --no-ngrams)"
        ) from exc
    return csr_matrix, ConvergenceWarning, LogisticRegression


def fit_member(
    ids: Sequence[Sequence[int]],
    hard: np.ndarray,
    base: int,
    *,
    max_n: int = 3,
    min_df: int = 2,
    c: float = 20.0,
    seed: int = 0,
) -> NgramMember:
    """The member fitted on ``ids`` (token ids of the training rows) and their 0/1 labels ``hard``
    ``[rows, labels]``; its blend weight is 1 (the encoder alone) until :func:`choose_blend` sets it."""
    csr_matrix, convergence_warning, logistic_regression = _sklearn()
    check_radix(base, max_n)
    started = time.monotonic()
    keys, idf = _vocabulary(ids, max_n, base, min_df)
    n_labels = hard.shape[1]
    member = NgramMember(
        NgramSpec(max_n=max_n, base=base, encoder_weight=1.0),
        keys,
        idf,
        np.zeros((len(keys), n_labels), np.float32),
        np.zeros(n_labels, np.float32),
    )
    rows, features, values = member.features(ids)
    matrix = csr_matrix((values, (rows, features)), shape=(len(ids), len(keys)))
    for j in range(n_labels):
        y = hard[:, j].astype(bool)
        if y.all() or not y.any():  # one class only: a constant
            member.intercept[j] = np.log(np.clip(y.mean(), 1e-4, 1 - 1e-4) / np.clip(1 - y.mean(), 1e-4, 1))
            continue
        model = logistic_regression(C=c, solver="liblinear", max_iter=1000, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", convergence_warning)
            model.fit(matrix, y)
        member.coef[:, j], member.intercept[j] = model.coef_[0], model.intercept_[0]
    log.info(
        "n-gram member: %d n-grams of orders 1-%d, %d rows, %.1fs",
        len(keys),
        max_n,
        len(ids),
        time.monotonic() - started,
    )
    return member


@dataclass(frozen=True)
class Blend:
    """The chosen blend: the member (None where the encoder alone was best), thresholds and validation metrics."""

    member: NgramMember | None
    thresholds: np.ndarray
    validation: dict[str, object]
    scores: dict[float, float]  # encoder weight → validation micro F1


def choose_blend(
    member: NgramMember, val_ids: Sequence[Sequence[int]], truth: np.ndarray, encoder: np.ndarray, labels: list[str]
) -> Blend:
    """Try each weight of :data:`WEIGHTS` on the validation rows (``truth`` 0/1, ``encoder`` the encoder's
    probabilities) and keep the best, with its tuned thresholds."""
    alone = member.probabilities(val_ids)
    best: tuple[float, float, np.ndarray, np.ndarray] | None = None
    scores: dict[float, float] = {}
    for weight in sorted(WEIGHTS, reverse=True):  # a tie keeps the larger encoder share (1.0: no member)
        probs = weight * encoder + (1.0 - weight) * alone
        thresholds = tune_thresholds(truth, probs)
        score = compute_metrics(truth, apply_thresholds(probs, thresholds), labels)["micro_f1"] or 0.0
        scores[weight] = round(float(score), 4)
        if best is None or score > best[0]:
            best = (score, weight, thresholds, probs)
    assert best is not None
    _, weight, thresholds, probs = best
    validation = compute_metrics(truth, apply_thresholds(probs, thresholds), labels, probs, list(thresholds))
    log.info("blend on the validation games (encoder weight: micro F1): %s; kept %.1f", scores, weight)
    chosen = None
    if weight < 1.0:
        chosen = NgramMember(
            member.spec.model_copy(update={"encoder_weight": weight}),
            member.keys,
            member.idf,
            member.coef,
            member.intercept,
        )
    return Blend(chosen, thresholds, validation, scores)
