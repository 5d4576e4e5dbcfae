"""Label agreement of reduced precisions with float32: the share of comments whose labels come out
identical. The trainer records it in each version's manifest (``dtype=auto`` reads it); ``livetopic bench``
reports it next to the speed it buys."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .labels import decide
from .runtime import LoadedModel

__all__ = ["DtypeAgreement", "measure_agreement"]


@dataclass(frozen=True, slots=True)
class DtypeAgreement:
    label_agreement: float  # share of comments with the same labels as float32
    prob_max_abs_diff: float  # largest score difference from float32
    near_threshold_fraction: float  # share of comments with a float32 score within 0.01 of its threshold
    comments_per_s: float  # in-process throughput (encode, prepare, run) on these comments


def measure_agreement(load: Callable[[str], LoadedModel], texts: Sequence[str], dtypes: Sequence[str], *,
                      batch_size: int = 256, max_tokens: int = 4096) -> dict[str, DtypeAgreement]:
    """Agreement with float32 of each dtype in ``dtypes`` (float32 itself included, as the reference) on
    ``texts``; ``load(dtype)`` gives the model in that dtype. One model is loaded at a time."""
    if not texts:
        raise ValueError("no texts to measure agreement on")
    probs: dict[str, np.ndarray] = {}
    rates: dict[str, float] = {}
    thresholds: np.ndarray | None = None
    multi = True
    for dtype in ["float32", *[d for d in dtypes if d != "float32"]]:
        model = load(dtype)
        model.predict_texts(texts[: min(len(texts), batch_size)], batch_size, max_tokens)  # warm-up
        started = time.perf_counter()
        probs[dtype] = model.predict_texts(texts, batch_size, max_tokens)
        rates[dtype] = len(texts) / (time.perf_counter() - started)
        thresholds, multi = model.thresholds, model.multi_label
        del model
        gc.collect()
    assert thresholds is not None
    reference = probs["float32"]
    expected = decide(reference, thresholds, multi)
    near = float((np.abs(reference - thresholds) < 0.01).any(axis=1).mean()) if multi else float("nan")
    return {dtype: DtypeAgreement(label_agreement=float((decide(p, thresholds, multi) == expected).all(axis=1).mean()),
                                  prob_max_abs_diff=float(np.abs(p - reference).max()),
                                  near_threshold_fraction=near, comments_per_s=rates[dtype])
            for dtype, p in probs.items()}
