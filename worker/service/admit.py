"""The admit stage: each delivery's entries are parsed (the invalid, and those delivered too often, are rejected
with a reason), encoded on the tokenizer thread by the model served now (which will score them: a swap lands
here, so a comment is encoded once), and put in the batcher with the time it has waited since its push (which
counts toward ``--max-wait-ms``); what is rejected goes straight to the publisher, and so do retractions
(``kind=retract``: nothing to score, so they never wait for a batch or hold one up).

Knows nothing of Redis; ends when its inbox is closed and empty, then closes the batcher."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor

from ..settings import Settings
from ..wire import Limits, Rejection, Retract, entry_age_s, parse_entry
from .batcher import MicroBatcher
from .channel import Channel
from .flow import Flow
from .item import Delivery, Item, Model

__all__ = ["Admit", "encode"]

log = logging.getLogger(__name__)


async def encode(model: Model, items: list[Item], pool: Executor, *, scorer: bool = True) -> list[Item]:
    """Token ids for ``items`` by ``model`` on ``pool`` (one call for all); when that fails, one call per item,
    and an item the tokenizer fails on is rejected. Returns the items encoded. ``scorer``: ``model`` becomes the
    items' model (admit); else (a further stage of a pipeline) only their ids are replaced."""
    loop = asyncio.get_running_loop()
    texts = [item.comment.text for item in items if item.comment is not None]
    try:
        rows = await loop.run_in_executor(pool, model.encode, texts)
    except Exception:
        return [item for item in items if await _encode_one(model, item, pool, scorer)]
    for item, row in zip(items, rows, strict=True):
        _encoded(item, row, model, scorer)
    return items


def _encoded(item: Item, row: list[int], model: Model, scorer: bool) -> None:
    item.ids = row
    if scorer:
        item.model = model


async def _encode_one(model: Model, item: Item, pool: Executor, scorer: bool) -> bool:
    assert item.comment is not None
    try:
        [row] = await asyncio.get_running_loop().run_in_executor(pool, model.encode, [item.comment.text])
    except Exception as exc:
        item.reject(f"tokenizer failed: {type(exc).__name__}: {exc}")
        return False
    _encoded(item, row, model, scorer)
    return True


class Admit:
    """From ``inbox`` to ``batcher`` (and the rejected and retractions to ``rejected``). ``current()`` is the model
    served now; the limits of a valid entry and ``max_deliveries`` come from ``settings``; ``wall_clock()`` is this
    host's time, against the entry ids' (the tests inject one)."""

    def __init__(
        self,
        inbox: Channel[Delivery],
        batcher: MicroBatcher[Item],
        rejected: Channel[list[Item]],
        flow: Flow,
        current: Callable[[], Model | None],
        *,
        pool: Executor,
        settings: Settings,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.inbox, self.batcher, self.rejected, self.flow, self._current = inbox, batcher, rejected, flow, current
        self.pool, self._wall_clock = pool, wall_clock
        self.limits = Limits(settings.max_text_chars, settings.max_entry_bytes, settings.max_passthrough_chars)
        self.max_deliveries = settings.max_deliveries

    async def run(self) -> None:
        while (delivery := await self.inbox.get()) is not None:
            await self.admit(delivery)
        self.batcher.close()

    def parse(self, delivery: Delivery) -> tuple[list[Item], list[Item]]:
        """(items to encode, items for the publisher at once: rejected, or retractions) for the entries of
        ``delivery``, in order."""
        shard, counts, limits, most = delivery.shard, delivery.deliveries, self.limits, self.max_deliveries
        valid: list[Item] = []
        aside: list[Item] = []
        for entry_id, fields in delivery.entries:
            parsed = parse_entry(entry_id, fields, limits, counts.get(entry_id, 1), most)
            if isinstance(parsed, Rejection):
                aside.append(Item.rejected(parsed, shard))
            elif isinstance(parsed, Retract):
                aside.append(Item.retracting(parsed, shard))
            else:
                valid.append(Item(parsed.entry_id, shard, parsed))
        return valid, aside

    async def admit(self, delivery: Delivery) -> None:
        valid, aside = self.parse(delivery)
        if valid:
            model = self._current()
            if model is None:
                raise RuntimeError("admit started before a model was served")
            encoded = await encode(model, valid, self.pool)
            if len(encoded) < len(valid):
                aside += [item for item in valid if item.rejection is not None]
            if encoded:  # the first is the oldest (stream order): how long since its push
                self.batcher.extend(encoded, entry_age_s(encoded[0].entry_id, self._wall_clock()))
        if aside:
            self.flow.started(len(aside))
            await self.rejected.put(aside)
