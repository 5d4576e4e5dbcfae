"""Label agreement of reduced precisions (and other engines) with float32: the share of comments whose labels
come out identical. The trainer records it in each version's manifest per backend and dtype (``auto`` reads
it); ``livetopic bench`` reports it next to the speed it buys, at large and small batches."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .runtime import LoadedModel

__all__ = ["FULL_BATCH", "SMALL_BATCH", "DtypeAgreement", "measure_agreement"]

FULL_BATCH = 256  # a saturated worker's passes (--max-batch-size's default)
SMALL_BATCH = 4  # a half-loaded worker's passes hold 2-8 comments (docs/PERFORMANCE.md)


@dataclass(frozen=True, slots=True)
class DtypeAgreement:
    label_agreement: float  # share of comments with the same labels as float32
    prob_max_abs_diff: float  # largest score difference from float32
    near_threshold_fraction: float  # share of comments with a float32 score within 0.01 of its threshold
    comments_per_s: float  # in-process throughput (encode, prepare, run) on these comments
    small_batch_comments_per_s: dict[int, float] = field(default_factory=dict)  # batch size → comments/s

    @property
    def served_rate(self) -> float:
        """Comments/s as workers meet them: the geometric mean of the rate in full batches (a saturated worker)
        and in batches of :data:`SMALL_BATCH` (a half-loaded one); the full batches' rate where that one was not
        measured. An engine fast only on full batches (OpenVINO int8 on the EPYC before the layer norms were
        unfused: 214 against ONNX Runtime's 186 at 256 comments, 91 against 120 at 4) does not rank first."""
        small = self.small_batch_comments_per_s.get(SMALL_BATCH)
        return math.sqrt(self.comments_per_s * small) if small else self.comments_per_s


def _rate(
    model: LoadedModel, texts: Sequence[str], batch_size: int, max_tokens: int, warm_n: int
) -> tuple[np.ndarray, float]:
    """(probabilities, comments/s) of ``texts`` in batches of ``batch_size``, timed after a warm-up on the first
    ``warm_n`` of them: all of them for small batches, whose passes take many shapes, so that an engine that
    prepares its kernels per input shape (OpenVINO) is timed as a worker that has served a while runs it."""
    model.predict_texts(texts[:warm_n], batch_size, max_tokens)
    started = time.perf_counter()
    probs = model.predict_texts(texts, batch_size, max_tokens)
    return probs, len(texts) / (time.perf_counter() - started)


def measure_agreement(
    load: Callable[[str], LoadedModel],
    texts: Sequence[str],
    names: Sequence[str],
    *,
    batch_size: int = FULL_BATCH,
    max_tokens: int = 4096,
    small_batches: Sequence[int] = (),
    small_n: int = 64,
) -> dict[str, DtypeAgreement]:
    """Agreement with float32 of each engine in ``names`` (``"float32"``, the reference, included) on ``texts``;
    ``load(name)`` gives the model so (a dtype, or ``"backend:dtype"``). One model is loaded at a time. With
    ``small_batches``, also the throughput in batches of those sizes over ``small_n`` of the texts."""
    if not texts:
        raise ValueError("no texts to measure agreement on")
    probs: dict[str, np.ndarray] = {}
    hits: dict[str, np.ndarray] = {}  # each engine's decisions (every output: each head of a multi-task version)
    rates: dict[str, float] = {}
    small: dict[str, dict[int, float]] = {}
    thresholds: np.ndarray | None = None
    multi = True
    for name in ["float32", *[n for n in names if n != "float32"]]:
        model = load(name)
        probs[name], rates[name] = _rate(model, texts, batch_size, max_tokens, batch_size)
        small[name] = {size: _rate(model, texts[:small_n], size, max_tokens, small_n)[1] for size in small_batches}
        hits[name] = model.hits(probs[name])
        thresholds, multi = model.thresholds, model.multi_label
        del model
        gc.collect()
    assert thresholds is not None
    reference = probs["float32"]
    expected = hits["float32"]
    near = float((np.abs(reference - thresholds) < 0.01).any(axis=1).mean()) if multi else float("nan")
    return {
        name: DtypeAgreement(
            label_agreement=float((hits[name] == expected).all(axis=1).mean()),
            prob_max_abs_diff=float(np.abs(p - reference).max()),
            near_threshold_fraction=near,
            comments_per_s=rates[name],
            small_batch_comments_per_s=small[name],
        )
        for name, p in probs.items()
    }
