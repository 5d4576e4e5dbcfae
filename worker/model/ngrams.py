"""A version's n-gram member: TF-IDF over the n-grams of its token ids and one logistic regression per label,
blended with the encoder's probabilities.

A from-scratch encoder and a bag of n-grams err on different comments: their average beats either (issue 21's
measurements, docs/TRAINING.md). The member reads the token ids the version's tokenizer already made, so the
worker's path does not change: :meth:`NgramMember.probabilities` runs where a batch is prepared (the tokenizer
thread), and :class:`~worker.model.runtime.LoadedModel` blends it into the backend's output, whatever the
backend. Pure numpy; the trainer fits it (:mod:`trainer.ngram_fit`) with the same :func:`ngram_keys`.

An n-gram of token ids ``t1 … tk`` is the integer ``Σ (t_i + 1) · base^(k-i)`` with ``base`` = vocabulary size
+ 1: distinct for every n-gram of every order, sortable, and looked up with one ``searchsorted``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ModelError

__all__ = ["NGRAMS_FILE", "NgramMember", "NgramSpec", "check_radix", "feature_rows", "ngram_keys"]

NGRAMS_FILE = "ngrams.safetensors"
_INT64_MAX = np.iinfo(np.int64).max


class NgramSpec(BaseModel):
    """The manifest's record of the member: its file, the n-gram orders and the blend."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(
        default=NGRAMS_FILE, pattern=r"^[\w.-]+\.safetensors$", description="a file in the version's directory"
    )
    max_n: int = Field(3, ge=1, le=6)
    base: int = Field(ge=2, description="vocabulary size + 1: the radix of an n-gram's key")
    encoder_weight: float = Field(
        ge=0.0, le=1.0, description="the encoder's share of the blend; the member has the rest"
    )


def check_radix(base: int, max_n: int) -> None:
    """Refuse orders whose keys would not fit an int64."""
    if base**max_n > _INT64_MAX:
        raise ModelError(f"n-grams of order {max_n} over a vocabulary of {base - 1} do not fit 64-bit keys")


def ngram_keys(ids: Sequence[Sequence[int]], max_n: int, base: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, key) of every n-gram of orders 1..``max_n`` in each row of ``ids``, rows in order; an n-gram with
    an id outside the vocabulary (``base`` - 1 ids) has no key and is left out."""
    lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter((t for r in ids for t in r), dtype=np.int64, count=int(lengths.sum())) + 1
    row = np.repeat(np.arange(len(ids), dtype=np.int64), lengths)
    outside = np.concatenate([[0], np.cumsum((flat < 1) | (flat >= base))])  # out-of-vocabulary ids before i
    rows, keys = [], []
    key = flat
    for k in range(1, max_n + 1):
        if len(flat) < k:
            break
        if k > 1:
            key = key[:-1] * base + flat[k - 1 :]  # the n-grams of order k, by start
        keep = (row[: len(row) - k + 1] == row[k - 1 :]) & (outside[k:] == outside[: len(outside) - k])
        rows.append(row[: len(row) - k + 1][keep])
        keys.append(key[keep])
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(keys)


def feature_rows(
    row: np.ndarray, feature: np.ndarray, idf: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, feature, value) of the TF-IDF matrix from each occurrence's (row, feature): sublinear term frequency
    (1 + log count) times idf, each row scaled to unit length (as scikit-learn's ``TfidfVectorizer``)."""
    n_features = len(idf)
    cells, counts = np.unique(row * n_features + feature, return_counts=True)
    rows, features = cells // n_features, cells % n_features
    values = (1.0 + np.log(counts)) * idf[features]
    norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n_rows))
    values = values / np.where(norms > 0, norms, 1.0)[rows]
    return rows, features, values.astype(np.float32)


@dataclass(frozen=True)
class NgramMember:
    """The fitted member: sorted n-gram ``keys`` [F], their ``idf`` [F], ``coef`` [F, labels], ``intercept``."""

    spec: NgramSpec
    keys: np.ndarray
    idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray

    def features(self, ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The TF-IDF matrix of ``ids`` as (row, feature, value); n-grams the member never saw are left out."""
        row, key = ngram_keys(ids, self.spec.max_n, self.spec.base)
        at = np.searchsorted(self.keys, key)
        known = at < len(self.keys)
        known[known] = self.keys[at[known]] == key[known]
        return feature_rows(row[known], at[known], self.idf, len(ids))

    def probabilities(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """float32 ``[rows, labels]``: each label's logistic regression on the rows' TF-IDF features."""
        rows, features, values = self.features(ids)
        logits = np.tile(self.intercept.astype(np.float64), (len(ids), 1))
        for j in range(self.coef.shape[1]):
            logits[:, j] += np.bincount(rows, weights=values * self.coef[features, j], minlength=len(ids))
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def blend(self, encoder: np.ndarray, member: np.ndarray) -> np.ndarray:
        w = np.float32(self.spec.encoder_weight)
        return w * encoder + (np.float32(1.0) - w) * member

    def save(self, model_dir: Path) -> None:
        from safetensors.numpy import save_file

        tensors = {"keys": self.keys, "idf": self.idf, "coef": self.coef, "intercept": self.intercept}
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(model_dir / self.spec.file))

    @classmethod
    def load(cls, model_dir: Path, spec: NgramSpec, n_labels: int) -> NgramMember:
        """Read and check the member's file (shapes, sorted unique keys, radix)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        check_radix(spec.base, spec.max_n)
        path = model_dir / spec.file
        try:
            t = load_file(str(path))
            member = cls(spec, t["keys"], t["idf"], t["coef"], t["intercept"])
        except (OSError, KeyError, ValueError, SafetensorError) as exc:
            raise ModelError(f"{path}: not a readable n-gram member: {exc}") from exc
        n = len(member.keys)
        if member.idf.shape != (n,) or member.coef.shape != (n, n_labels) or member.intercept.shape != (n_labels,):
            raise ModelError(f"{path}: shapes do not match {n} n-grams and {n_labels} labels")
        if n > 1 and not bool((np.diff(member.keys) > 0).all()):
            raise ModelError(f"{path}: n-gram keys are not sorted and unique")
        return member
