"""The publish stage alone (an in-memory publish script): results and dead letters go out in order through their
shard's script, in parts of bounded size, each part released from the worker's hands once published; what the
script says was finished already is counted, not published; transient errors are retried; a closed inbox ends it."""

from __future__ import annotations

import asyncio
import json

import numpy as np

from worker.errors import RedisTransientError
from worker.service.channel import Channel
from worker.service.flow import Flow
from worker.service.health import Health
from worker.service.item import Item
from worker.service.metrics import Metrics
from worker.service.publisher import PUBLISH_PART_CHARS, Publisher
from worker.wire import Comment, Rejection, Retract

from .fakes import FakeModel, FakeTarget, Route, counter

MODEL = FakeModel("fake:7")


def scored(n: int, text: str = "加油", shard: int = 0, channel: str = "c1") -> Item:
    item = Item(f"{n}-0", shard, Comment(f"{n}-0", text, {"channel": channel}), model=MODEL)
    item.scored(["A"], np.array([0.9, 0.25], dtype=np.float32))
    return item


def rejected(n: int, shard: int = 0) -> Item:
    return Item.rejected(Rejection(f"{n}-0", "missing field 'text'", {"user": "u"}), shard)


class Harness:
    def __init__(self, shards: int = 1) -> None:
        self.metrics = Metrics(channels=("c1",))
        self.targets = [FakeTarget() for _ in range(shards)]
        self.inbox: Channel[list[Item]] = Channel(10)
        self.flow = Flow(1000, 1000, Health(self.metrics))
        self.publisher = Publisher(self.inbox, [Route(t) for t in self.targets], self.flow, self.metrics)

    async def publish(self, *batches: list[Item]) -> None:
        for batch in batches:
            self.flow.hold([(i.entry_id, None) for i in batch])
            await self.inbox.put(batch)
        self.inbox.close()
        await asyncio.wait_for(self.publisher.run(), 5)


async def test_results_and_dead_letters_in_order_then_released() -> None:
    h = Harness()
    await h.publish([scored(1), rejected(2), scored(3, channel="c9")])
    [target] = h.targets
    assert target.calls == [["1-0", "2-0", "3-0"]]  # one script call
    first, letter, _ = target.published
    assert not first.dead and first.fields["model"] == "fake:7" and first.fields["text"] == "加油"
    assert json.loads(first.fields["labels"]) == ["A"] and json.loads(first.fields["scores"]) == {"A": 0.9, "B": 0.25}
    assert letter.dead and letter.fields == {
        "user": "u",
        "source_id": "2-0",
        "error": "missing field 'text'",
        "deliveries": "1",
    }
    assert len(h.flow) == 0
    assert counter(h.metrics, "livetopic_comments_total", outcome="classified") == 2
    assert counter(h.metrics, "livetopic_comments_total", outcome="dead_lettered") == 1
    assert counter(h.metrics, "livetopic_label_total", label="A", channel="c1", stage="model") == 1
    assert counter(h.metrics, "livetopic_label_total", label="A", channel="other", stage="model") == 1


async def test_large_batches_go_out_in_parts_each_released_when_published() -> None:
    h = Harness()
    [target] = h.targets
    long_text = "好" * (PUBLISH_PART_CHARS // 3)
    target.gate = asyncio.Event()
    batch = [scored(n, long_text) for n in range(1, 8)]
    task = asyncio.create_task(h.publish(batch))
    while not len(h.flow):
        await asyncio.sleep(0)
    assert len(h.flow) == 7  # nothing published yet: everything in hand
    target.gate.set()
    await asyncio.wait_for(task, 5)
    assert [len(call) for call in target.calls] == [2, 2, 2, 1] and len(h.flow) == 0


async def test_results_go_back_to_their_shard() -> None:
    h = Harness(shards=2)
    await h.publish([scored(1, shard=1), scored(2, shard=0), rejected(3, shard=1)])
    assert [c for t in h.targets for c in t.calls] == [["2-0"], ["1-0", "3-0"]]


async def test_finished_already_is_counted_not_published_and_errors_are_retried() -> None:
    h = Harness()
    [target] = h.targets
    target.done.add("1-0")  # another consumer published it first
    target.fail = [RedisTransientError("connection reset", "publish")]
    await h.publish([scored(1), scored(2)])
    assert [r.entry_id for r in target.published] == ["2-0"] and len(h.flow) == 0
    assert counter(h.metrics, "livetopic_duplicates_suppressed_total") == 1
    assert counter(h.metrics, "livetopic_comments_total", outcome="classified") == 1
    assert target.calls == [["1-0", "2-0"]]  # the call that failed wrote nothing; the retry did it all


async def test_the_output_can_leave_the_text_out() -> None:
    h = Harness()
    h.publisher.text = False
    await h.publish([scored(1)])
    assert "text" not in h.targets[0].published[0].fields


def retraction(n: int, action: str = "delete", target: str = "m1") -> Item:
    return Item.retracting(Retract(f"{n}-0", action, target, {"channel": "c1", "id": f"{action}:{target}"}), 0)


async def test_retractions_are_published_as_results_once_and_counted_by_action() -> None:
    """Issue 22: a retraction goes out through the same script call as the results (the commit point), on the
    output stream, marked kind=retract with its target; one finished already is not published again."""
    h = Harness()
    [target] = h.targets
    target.done.add("4-0")
    await h.publish([scored(1), retraction(2), retraction(3, "ban", "a7"), retraction(4), rejected(5)])
    assert target.calls == [["1-0", "2-0", "3-0", "4-0", "5-0"]]
    out = {r.entry_id: r for r in target.published}
    assert set(out) == {"1-0", "2-0", "3-0", "5-0"} and not out["2-0"].dead and not out["3-0"].dead
    fields = dict(out["2-0"].fields)
    assert int(fields.pop("latency_ms")) >= 0
    assert fields == {
        "source_id": "2-0",
        "kind": "retract",
        "action": "delete",
        "target_id": "m1",
        "channel": "c1",
        "id": "delete:m1",
    }
    assert out["3-0"].fields["target_author_id"] == "a7" and "labels" not in out["3-0"].fields
    assert counter(h.metrics, "livetopic_retractions_total", action="delete") == 1
    assert counter(h.metrics, "livetopic_retractions_total", action="ban") == 1
    assert counter(h.metrics, "livetopic_retractions_total", action="timeout") == 0
    assert counter(h.metrics, "livetopic_comments_total", outcome="classified") == 1  # retractions are not comments
    assert counter(h.metrics, "livetopic_duplicates_suppressed_total") == 1
    assert len(h.flow) == 0
