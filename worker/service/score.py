"""The score stage: take the next batch from the batcher when the model is free, prepare it (tokenizer thread),
run it (model thread) and hand the scored items to the publisher. A batch that fails is split to find the
comment(s) at fault; a device out of memory halves it; rows with non-finite scores are rejected one by one.

Every item of a batch comes out scored or rejected with a reason; no path drops one. Each item is scored by
the model that encoded it (admit's choice): a batch that straddles a model swap is scored in two parts.

A pipeline version (a cascade): after the first stage, each further stage runs on the items of the batch that
meet its condition (and were not rejected), one stage after another: encoded by its tokenizer and prepared
(tokenizer thread), run (model thread), split like the first on a failure; its labels and scores are added to the
same items (:meth:`Item.staged`). A comment a further stage cannot score is rejected, as by the first.

A multi-task version (heads): the first run gives every head's scores at once; each further head's labels and
scores are added to the items that meet its condition, as a pipeline's stage would add them, with no further
run."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ..errors import ModelOutOfMemoryError
from ..model.chunks import Prepared
from ..model.runtime import Head, Stage
from .admit import encode
from .batcher import MicroBatcher
from .channel import Channel
from .flow import Flow
from .item import Item, Model
from .metrics import Metrics

__all__ = ["Score", "by_model"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def by_model(batch: list[Item]) -> Iterator[tuple[Model, list[Item]]]:
    """The batch's items grouped by the model that encoded them (one group, but at a swap), in order."""
    first = batch[0].model
    if all(item.model is first for item in batch):
        assert first is not None
        yield first, batch
        return
    groups: dict[int, tuple[Model, list[Item]]] = {}
    for item in batch:
        assert item.model is not None
        groups.setdefault(id(item.model), (item.model, []))[1].append(item)
    yield from groups.values()


@dataclass(frozen=True)
class Layer:
    """A stage of the version at work on a batch: its name (the ``stage`` label of its metrics), its model, and
    whether it is a further stage (its scores go to :meth:`Item.staged`) or the first (:meth:`Item.scored`)."""

    name: str
    model: Model
    further: bool = False

    def apply(self, item: Item, labels: list[str], probs: np.ndarray) -> None:
        if self.further:
            item.staged(self.name, labels, probs)
        else:
            item.scored(labels, probs)


class Score:
    def __init__(
        self,
        batcher: MicroBatcher[Item],
        outbox: Channel[list[Item]],
        flow: Flow,
        *,
        tokenizer_pool: Executor,
        model_pool: Executor,
        max_batch_tokens: int,
        metrics: Metrics,
    ) -> None:
        self.batcher, self.outbox, self.flow, self.metrics = batcher, outbox, flow, metrics
        self._tokenizer_pool, self._model_pool = tokenizer_pool, model_pool
        self.max_batch_tokens = max_batch_tokens

    async def run(self) -> None:
        """Until the batcher is closed and drained; then closes the outbox."""
        while batch := await self.batcher.next_batch():
            self.flow.started(len(batch))
            for model, items in by_model(batch):
                await self.score_batch(model, items)
            await self.outbox.put(batch)
        self.outbox.close()

    async def _in(self, pool: Executor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def score_batch(self, model: Model, items: list[Item]) -> None:
        """Score ``items`` (all encoded by ``model``), observing the batch's size and tokens."""
        try:
            prepared: Prepared | None = await self._in(
                self._tokenizer_pool, model.prepare, [item.ids for item in items], self.max_batch_tokens
            )
        except Exception:
            prepared = None  # score() prepares again, and splits the batch if that keeps failing
        self.metrics.batch_size.observe(len(items))
        if prepared is not None:
            self.metrics.batch_tokens.observe(prepared.tokens)
            self.metrics.padded_tokens.inc(prepared.padded_tokens)
        await self.score(Layer(model.stage_name, model), items, prepared)
        for stage in model.stages:
            await self.cascade(model.stage_name, stage, items)

    async def cascade(self, first: str, stage: Stage, items: list[Item]) -> None:
        """The further ``stage`` on the ``items`` that meet its condition (``first``: the first stage's name)."""
        chosen = [item for item in items if item.rejection is None and stage.applies(item.labels_by_stage(first))]
        if chosen:
            chosen = await encode(stage.model, chosen, self._tokenizer_pool, scorer=False)
        if chosen:
            await self.score(Layer(stage.name, stage.model, further=True), chosen)

    async def score(self, layer: Layer, items: list[Item], prepared: Prepared | None = None) -> None:
        """``layer``'s scores for ``items``. On an exception the batch is split to find the comment(s) at fault;
        when the device runs out of memory it is halved and retried; non-finite rows are rejected one by one."""
        model = layer.model
        try:
            if prepared is None:
                prepared = await self._in(
                    self._tokenizer_pool, model.prepare, [item.ids for item in items], self.max_batch_tokens
                )
            started = time.perf_counter()
            probs = await self._in(self._model_pool, model.run, prepared)
            self.metrics.observe_stage(layer.name, time.perf_counter() - started, len(items), first=not layer.further)
        except Exception as exc:
            await self._split(layer, items, exc)
            return
        finite = np.isfinite(probs).all(axis=1)
        decided = model.decide(probs)
        first = probs[:, : len(model.labels)]  # all of them, but of a multi-task version (its first head's)
        for i, item in enumerate(items):
            if finite[i]:
                layer.apply(item, decided[i], first[i])
            else:
                item.reject(f"model produced non-finite scores{f' (stage {layer.name})' if layer.further else ''}")
        for head in model.heads[1:]:
            self._head(layer.name, head, items, probs)

    def _head(self, first: str, head: Head, items: list[Item], outputs: np.ndarray) -> None:
        """A further head of a multi-task version, from the first run's ``outputs``: on the scored ``items`` that
        meet its condition (``first``: the first head's name)."""
        rows = [i for i, it in enumerate(items) if it.rejection is None and head.applies(it.labels_by_stage(first))]
        probs = head.probs(outputs[rows])
        for i, labels, row in zip(rows, head.decide(probs), probs, strict=True):
            items[i].staged(head.name, labels, row)
        self.metrics.observe_stage(head.name, 0.0, len(rows), first=False)

    async def _split(self, layer: Layer, items: list[Item], exc: Exception) -> None:
        oom = isinstance(exc, ModelOutOfMemoryError)
        if len(items) == 1:
            reason = "CUDA out of memory on a single comment" if oom else f"model failed: {type(exc).__name__}: {exc}"
            log.warning("dead-lettering %s: %s", items[0].entry_id, reason)
            items[0].reject(reason)
            return
        log.warning("batch of %d failed (%s: %s); splitting it", len(items), type(exc).__name__, exc)
        mid = len(items) // 2
        await self.score(layer, items[:mid])
        await self.score(layer, items[mid:])
