"""The scoring stages: encode comments (tokenizer thread), prepare a batch and score it (model thread),
isolating poison comments. Given its model and its two executors; knows nothing of Redis or the worker.

Every comment handed to :meth:`Scorer.score_batch` comes out as exactly one :class:`Finished`, scored or
rejected with a reason; no path drops one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from ..errors import ModelOutOfMemoryError
from ..model.chunks import Prepared
from ..wire import Comment, Rejection
from .metrics import Metrics

__all__ = ["Finished", "Scorer", "ScoringModel"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class ScoringModel(Protocol):
    """What the scorer needs of a model (:class:`~worker.model.runtime.LoadedModel` is one)."""

    tag: str
    labels: list[str]

    def encode(self, texts: Sequence[str]) -> list[list[int]]: ...

    def prepare(self, ids: Sequence[Sequence[int]], max_tokens: int) -> Prepared: ...

    def run(self, prepared: Prepared) -> np.ndarray: ...

    def decide(self, probs: np.ndarray) -> list[list[str]]: ...


@dataclass(slots=True)
class Finished:
    """One comment's outcome: scored (``model``/``probs`` set) or rejected (``rejection`` set)."""

    entry_id: str
    comment: Comment | None = None
    model: ScoringModel | None = None
    labels: list[str] | None = None
    probs: np.ndarray | None = None
    rejection: Rejection | None = None

    @classmethod
    def rejected(cls, rejection: Rejection) -> Finished:
        return cls(rejection.entry_id, rejection=rejection)

    @classmethod
    def failed(cls, comment: Comment, error: str) -> Finished:
        fields = dict(comment.passthrough, text=comment.text)
        return cls(comment.entry_id, rejection=Rejection(comment.entry_id, error, fields, comment.deliveries))


class Scorer:
    """``current()`` is the model to use: read once per batch, so a hot swap lands between batches."""

    def __init__(self, current: Callable[[], ScoringModel | None], *, tokenizer_pool: Executor, model_pool: Executor,
                 max_batch_tokens: int, metrics: Metrics) -> None:
        self._current = current
        self._tokenizer_pool, self._model_pool = tokenizer_pool, model_pool
        self.max_batch_tokens = max_batch_tokens
        self.metrics = metrics

    def _model(self) -> ScoringModel:
        model = self._current()
        if model is None:
            raise RuntimeError("no model loaded")
        return model

    async def _in(self, pool: Executor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def encode(self, comments: list[Comment]) -> tuple[list[Comment], list[Finished]]:
        """Token ids for ``comments`` with the current model; comments the tokenizer fails on are rejected."""
        model = self._model()
        try:
            ids = await self._in(self._tokenizer_pool, model.encode, [c.text for c in comments])
        except Exception:
            return await self._encode_each(model, comments)
        for comment, row in zip(comments, ids, strict=True):
            comment.ids, comment.encoded_by = row, model
        return comments, []

    async def _encode_each(self, model: ScoringModel, comments: list[Comment]) -> tuple[list[Comment], list[Finished]]:
        ok: list[Comment] = []
        failed: list[Finished] = []
        for comment in comments:
            try:
                [row] = await self._in(self._tokenizer_pool, model.encode, [comment.text])
            except Exception as exc:
                failed.append(Finished.failed(comment, f"tokenizer failed: {type(exc).__name__}: {exc}"))
                continue
            comment.ids, comment.encoded_by = row, model
            ok.append(comment)
        return ok, failed

    async def score_batch(self, batch: list[Comment]) -> list[Finished]:
        """Score ``batch`` with the current model (re-encoding comments encoded by an earlier one)."""
        model = self._model()
        failures: list[Finished] = []
        stale = [c for c in batch if c.encoded_by is not model]
        if stale:
            _, failures = await self.encode(stale)
            failed_ids = {f.entry_id for f in failures}
            batch = [c for c in batch if c.entry_id not in failed_ids]
        if not batch:
            return failures
        try:
            prepared: Prepared | None = await self._in(self._tokenizer_pool, model.prepare, [c.ids for c in batch],
                                                       self.max_batch_tokens)
        except Exception:
            prepared = None  # score() prepares again, and splits the batch if that keeps failing
        self.metrics.batch_size.observe(len(batch))
        if prepared is not None:
            self.metrics.batch_tokens.observe(prepared.tokens)
            self.metrics.padded_tokens.inc(prepared.padded_tokens)
        return failures + await self.score(model, batch, prepared)

    async def score(self, model: ScoringModel, batch: list[Comment],
                    prepared: Prepared | None = None) -> list[Finished]:
        """Scores for ``batch``. On an exception the batch is split to find the comment(s) at fault;
        when the device runs out of memory it is halved and retried; non-finite rows are rejected one by one."""
        try:
            if prepared is None:
                prepared = await self._in(self._tokenizer_pool, model.prepare, [c.ids for c in batch],
                                          self.max_batch_tokens)
            started = time.perf_counter()
            probs = await self._in(self._model_pool, model.run, prepared)
            self.metrics.inference_seconds.observe(time.perf_counter() - started)
        except Exception as exc:
            return await self._split(model, batch, exc)
        finite = np.isfinite(probs).all(axis=1)
        decided = model.decide(probs)
        return [Finished(c.entry_id, c, model, decided[i], probs[i]) if finite[i]
                else Finished.failed(c, "model produced non-finite scores") for i, c in enumerate(batch)]

    async def _split(self, model: ScoringModel, batch: list[Comment], exc: Exception) -> list[Finished]:
        oom = isinstance(exc, ModelOutOfMemoryError)
        if len(batch) == 1:
            reason = "CUDA out of memory on a single comment" if oom else f"model failed: {type(exc).__name__}: {exc}"
            log.warning("dead-lettering %s: %s", batch[0].entry_id, reason)
            return [Finished.failed(batch[0], reason)]
        log.warning("batch of %d failed (%s: %s); splitting it", len(batch), type(exc).__name__, exc)
        mid = len(batch) // 2
        return await self.score(model, batch[:mid]) + await self.score(model, batch[mid:])
