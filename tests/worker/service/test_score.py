"""The score stage with a fake model: every item comes out exactly once, scored or rejected with a reason; poison
comments are found by splitting; a device out of memory halves the batch; a batch that straddles a model swap is
scored by each item's own model; the stage drains the batcher and closes its outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from worker.service.batcher import MicroBatcher
from worker.service.channel import Channel
from worker.service.flow import Flow
from worker.service.health import Health
from worker.service.item import Item
from worker.service.metrics import Metrics
from worker.service.score import Score
from worker.wire import Comment

from .fakes import FakeModel, counter


@pytest.fixture
def pools() -> Iterator[tuple[ThreadPoolExecutor, ThreadPoolExecutor]]:
    with ThreadPoolExecutor(1) as tokenize, ThreadPoolExecutor(1) as model:
        yield tokenize, model


class Harness:
    def __init__(self, pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor]) -> None:
        self.metrics = Metrics()
        self.batcher: MicroBatcher[Item] = MicroBatcher(
            max_items=100, max_tokens=10_000, max_wait_s=0, cost=lambda item: len(item.ids)
        )
        self.outbox: Channel[list[Item]] = Channel(10)
        self.flow = Flow(1000, 1000, Health(self.metrics))
        self.score = Score(
            self.batcher,
            self.outbox,
            self.flow,
            tokenizer_pool=pools[0],
            model_pool=pools[1],
            max_batch_tokens=4096,
            metrics=self.metrics,
        )

    async def run(self, model: FakeModel, *texts: str) -> dict[str, list[str] | str]:
        """Score ``texts`` (encoded by ``model``) as one batch: entry id → labels, or the rejection's reason."""
        items = encoded(model, *texts)
        self.flow.hold([(i.entry_id, None) for i in items])
        self.batcher.extend(items)
        self.batcher.close()
        await asyncio.wait_for(self.score.run(), 5)
        out: dict[str, list[str] | str] = {}
        while (batch := await self.outbox.get()) is not None:
            for item in batch:
                assert item.entry_id not in out, "a comment came out twice"
                assert (item.rejection is None) != (item.labels is None), "scored or rejected, not both or neither"
                out[item.entry_id] = item.rejection.error if item.rejection else list(item.labels or [])
        return out


def encoded(model: FakeModel, *texts: str) -> list[Item]:
    items = []
    for i, text in enumerate(texts):
        item = Item(f"{i + 1}-0", 0, Comment(f"{i + 1}-0", text, {"user": f"u{i}"}))
        [item.ids], item.model = model.encode([text]), model
        items.append(item)
    model.encoded.clear()
    return items


async def test_every_item_is_scored_once(pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor]) -> None:
    model = FakeModel()
    h = Harness(pools)
    assert await h.run(model, "abc", "xyz", "banana") == {"1-0": ["A"], "2-0": [], "3-0": ["A"]}
    assert model.runs == [3] and model.encoded == []  # admit encoded them: never again here
    assert counter(h.metrics, "livetopic_batch_size_sum") == 3 and h.flow.waiting == 0


async def test_a_poison_comment_is_found_by_splitting(pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor]) -> None:
    model = FakeModel(poison="boom", nan="nan!")
    texts = [f"c{i}a" for i in range(14)]
    texts[5], texts[9] = "boom", "nan!"
    result = await Harness(pools).run(model, *texts)
    assert len(result) == 14
    assert result["6-0"] == "model failed: RuntimeError: index out of range"
    assert result["10-0"] == "model produced non-finite scores"
    assert all(result[f"{i + 1}-0"] == ["A"] for i in range(14) if i not in (5, 9))
    assert 1 in model.runs and len(model.runs) <= 2 * 4 + 1  # a binary search, not a run per comment


async def test_out_of_memory_halves_the_batch(pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor]) -> None:
    model = FakeModel(max_rows=3)
    result = await Harness(pools).run(model, *[f"a{i}" for i in range(12)])
    assert model.runs[:3] == [12, 6, 3] and all(v == ["A"] for v in result.values()) and len(result) == 12
    model.max_rows = 0  # not even one comment fits
    assert await Harness(pools).run(model, "a") == {"1-0": "CUDA out of memory on a single comment"}


async def test_a_batch_across_a_swap_is_scored_by_each_items_model(
    pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor],
) -> None:
    old, new = FakeModel("fake:1"), FakeModel("fake:2")
    h = Harness(pools)
    items = [*encoded(old, "ab", "cd"), *encoded(new, "ef")]
    items[2].entry_id = "3-0"
    h.batcher.extend(items)
    h.batcher.close()
    await asyncio.wait_for(h.score.run(), 5)
    batch = await h.outbox.get()
    assert batch is not None and [i.entry_id for i in batch] == ["1-0", "2-0", "3-0"]  # in order
    assert old.runs == [2] and new.runs == [1] and old.encoded == new.encoded == []


async def test_a_further_stage_runs_on_the_comments_meeting_its_condition(
    pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor],
) -> None:
    """A pipeline: the stage ``second`` only where the first gave A; a comment it fails on is rejected (the rest
    of its batch scored), one it never ran on has no stage output."""
    from worker.model.runtime import Stage
    from worker.model.stages import Condition

    first, second = FakeModel(), FakeModel(poison="boom a")
    first.stage_name = "first"
    first.stages = (Stage("second", second, Condition(stage="first", label="A")),)  # type: ignore[arg-type]
    h = Harness(pools)
    items = encoded(first, "abc", "xyz", "boom a", "banana")
    h.flow.hold([(i.entry_id, None) for i in items])
    h.batcher.extend(items)
    h.batcher.close()
    await asyncio.wait_for(h.score.run(), 5)
    [batch] = [b async for b in _batches(h.outbox)]
    assert [i.rejection.error if i.rejection else i.labels for i in batch] == [
        ["A"],
        [],
        "model failed: RuntimeError: index out of range",
        ["A"],
    ]
    assert [sorted(i.stages) for i in batch] == [["second"], [], [], ["second"]]
    assert second.encoded == ["abc", "boom a", "banana"]  # encoded by its own tokenizer, once each
    assert counter(h.metrics, "livetopic_stage_comments_total", stage="first") == 4
    assert counter(h.metrics, "livetopic_stage_comments_total", stage="second") == 2  # the scored ones


async def _batches(outbox: Channel[list[Item]]):  # type: ignore[no-untyped-def]
    while (batch := await outbox.get()) is not None:
        yield batch
