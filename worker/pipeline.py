"""The scoring stages of the worker: encode comments, prepare batches (tokenizer thread), run the
model (model thread), isolate poison comments, and turn outcomes into publishable records.

Every comment handed to :class:`Classifier` comes out as exactly one :class:`Finished`, scored or
rejected with a reason; no path drops one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .messages import Comment, Rejection, entry_time_ms, parse_entry, render_dead_letter, render_result
from .metrics import Metrics
from .model import LoadedModel, Prepared
from .streams import Outgoing

if TYPE_CHECKING:
    from .service import Worker

__all__ = ["Classifier", "Finished", "publishable"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Finished:
    """One comment's outcome: scored (``model``/``probs`` set) or rejected (``rejection`` set)."""

    entry_id: str
    comment: Comment | None = None
    model: LoadedModel | None = None
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


def publishable(finished: Sequence[Finished], now_ms: int | None = None) -> tuple[list[Outgoing], list[Finished]]:
    """Render stream records (same order as ``finished``)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    records = []
    for item in finished:
        if item.rejection is not None:
            r = item.rejection
            records.append(Outgoing(r.entry_id, render_dead_letter(r.entry_id, r.error, r.deliveries, r.fields),
                                    dead=True))
        else:
            assert item.comment is not None and item.model is not None and item.probs is not None
            records.append(Outgoing(item.entry_id, render_result(item.comment, item.labels or [], item.model.labels,
                                                                 item.probs.tolist(), item.model.tag, now)))
    return records, list(finished)


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError)


class Classifier:
    def __init__(self, worker: Worker, metrics: Metrics) -> None:
        self.worker, self.metrics = worker, metrics
        self._queue: asyncio.Queue[tuple[LoadedModel, list[Comment], Prepared | None] | None] = asyncio.Queue(maxsize=1)
        # A batch is formed only when the model is free to take it: while the model works, comments keep
        # gathering (up to the batch limits) instead of leaving early in small batches that queue up.
        # Tokenizing still overlaps the model: comments are encoded as they are read.
        self.slots = asyncio.Semaphore(1)

    def parse(self, entry_id: str, fields: Mapping[bytes, bytes], deliveries: int) -> Comment | Rejection:
        return parse_entry(entry_id, fields, self.worker.limits, deliveries)

    async def encode(self, comments: list[Comment]) -> tuple[list[Comment], list[Finished]]:
        """Token ids for ``comments`` with the current model; comments the tokenizer fails on are rejected."""
        model = self.worker.model
        assert model is not None
        try:
            ids = await self.worker.run_in(self.worker.tokenizer_pool, model.encode, [c.text for c in comments])
        except Exception:
            return await self._encode_each(model, comments)
        for comment, row in zip(comments, ids, strict=True):
            comment.ids, comment.encoded_by = row, model
        return comments, []

    async def _encode_each(self, model: LoadedModel, comments: list[Comment]) -> tuple[list[Comment], list[Finished]]:
        ok: list[Comment] = []
        failed: list[Finished] = []
        for comment in comments:
            try:
                [row] = await self.worker.run_in(self.worker.tokenizer_pool, model.encode, [comment.text])
            except Exception as exc:
                failed.append(Finished.failed(comment, f"tokenizer failed: {type(exc).__name__}: {exc}"))
                continue
            comment.ids, comment.encoded_by = row, model
            ok.append(comment)
        return ok, failed

    async def submit(self, batch: list[Comment] | None) -> None:
        """Prepare ``batch`` (tokenizer thread) and queue it for the model; None ends the stream.

        The caller holds one of :attr:`slots`; it is released once the batch is scored (or found empty)."""
        if batch is None:
            await self._queue.put(None)
            return
        model = self.worker.model  # the swap point: one model per batch
        assert model is not None
        stale = [c for c in batch if c.encoded_by is not model]
        if stale:
            _, failures = await self.encode(stale)
            if failures:
                failed_ids = {f.entry_id for f in failures}
                batch = [c for c in batch if c.entry_id not in failed_ids]
                await self.worker.publish(failures)
                if not batch:
                    self.slots.release()
                    return
        try:
            prepared: Prepared | None = await self.worker.run_in(self.worker.tokenizer_pool, model.prepare,
                                                                 [c.ids for c in batch],
                                                                 self.worker.settings.max_batch_tokens)
        except Exception:
            prepared = None  # score() prepares again, and splits the batch if that keeps failing
        await self._queue.put((model, batch, prepared))

    async def run(self) -> None:
        """The inference stage: score each prepared batch and hand the outcomes to the publisher."""
        while (item := await self._queue.get()) is not None:
            model, batch, prepared = item
            self.metrics.batch_size.observe(len(batch))
            if prepared is not None:
                self.metrics.batch_tokens.observe(prepared.tokens)
                self.metrics.padded_tokens.inc(prepared.padded_tokens)
            finished = await self.score(model, batch, prepared)
            self.slots.release()
            await self.worker.publish(finished)
        await self.worker.publish(None)

    async def score(self, model: LoadedModel, batch: list[Comment], prepared: Prepared | None = None) -> list[Finished]:
        """Scores for ``batch``. On an exception the batch is split to find the comment(s) at fault;
        on CUDA out-of-memory it is halved and retried; non-finite rows are rejected one by one."""
        try:
            if prepared is None:
                prepared = await self.worker.run_in(self.worker.tokenizer_pool, model.prepare,
                                                    [c.ids for c in batch], self.worker.settings.max_batch_tokens)
            started = time.perf_counter()
            probs = await self.worker.run_in(self.worker.model_pool, model.run, prepared)
            self.metrics.inference_seconds.observe(time.perf_counter() - started)
        except Exception as exc:
            oom = _is_oom(exc)
            if oom:
                import torch

                torch.cuda.empty_cache()
            if len(batch) == 1:
                reason = f"model failed: {type(exc).__name__}: {exc}"
                if oom:
                    reason = "CUDA out of memory on a single comment"
                log.warning("dead-lettering %s: %s", batch[0].entry_id, reason)
                return [Finished.failed(batch[0], reason)]
            log.warning("batch of %d failed (%s: %s); splitting it", len(batch), type(exc).__name__, exc)
            mid = len(batch) // 2
            return await self.score(model, batch[:mid]) + await self.score(model, batch[mid:])
        finite = np.isfinite(probs).all(axis=1)
        decided = model.decide(probs)
        out = []
        for i, comment in enumerate(batch):
            if finite[i]:
                out.append(Finished(comment.entry_id, comment, model, decided[i], probs[i]))
            else:
                out.append(Finished.failed(comment, "model produced non-finite scores"))
        return out

    def account(self, finished: Sequence[Finished], flags: Sequence[bool], now_s: float) -> None:
        """Metrics for what the publish script actually published."""
        m = self.metrics
        for item, published in zip(finished, flags, strict=True):
            if not published:
                m.duplicates_suppressed.inc()
                continue
            if item.rejection is not None:
                m.comments.labels(outcome="dead_lettered").inc()
                continue
            m.comments.labels(outcome="classified").inc()
            for label in item.labels or ():
                m.labels.labels(label=label).inc()
            m.end_to_end_seconds.observe(max(0.0, now_s - entry_time_ms(item.entry_id) / 1000))
