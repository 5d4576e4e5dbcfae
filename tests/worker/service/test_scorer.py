"""The scorer with a fake model: every comment comes out exactly once, scored or rejected with a reason; poison
comments are found by splitting; a device out of memory halves the batch; a swapped model re-encodes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from worker.errors import ModelOutOfMemoryError
from worker.model.chunks import Prepared, pad_chunks
from worker.service.metrics import Metrics
from worker.service.scorer import Finished, Scorer
from worker.wire import Comment


class FakeModel:
    """Token ids are the characters' code points; the score of label A is 1 when the text has an "a", of B 0.25.
    ``poison``: a text whose presence fails a run; ``nan``: a text that scores NaN; ``max_rows``: larger runs
    raise ModelOutOfMemoryError; ``bad_token``: a character the tokenizer fails on."""

    def __init__(self, tag: str = "fake:1", *, poison: str = "", nan: str = "", max_rows: int = 10**9,
                 bad_token: str = "") -> None:
        self.labels = ["A", "B"]
        self.tag, self.poison, self.nan, self.max_rows, self.bad_token = tag, poison, nan, max_rows, bad_token
        self.runs: list[int] = []
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        if self.bad_token and any(self.bad_token in t for t in texts):
            raise ValueError("cannot tokenise")
        self.encoded += texts
        return [[ord(c) for c in t] for t in texts]

    def prepare(self, ids: Sequence[Sequence[int]], max_tokens: int) -> Prepared:
        return pad_chunks(ids, max_tokens, pad_id=0, overhead_tokens=0)

    def run(self, prepared: Prepared) -> np.ndarray:
        self.runs.append(prepared.size)
        if prepared.size > self.max_rows:
            raise ModelOutOfMemoryError("no room")
        out = np.empty((prepared.size, 2), dtype=np.float32)
        for chunk in prepared.chunks:
            for r, row in enumerate(chunk.rows):
                text = "".join(chr(i) for i in chunk.input_ids[r][chunk.attention_mask[r] == 1])
                if self.poison and text == self.poison:
                    raise RuntimeError("index out of range")
                out[row] = (np.nan if text == self.nan else float("a" in text), 0.25)
        return out

    def decide(self, probs: np.ndarray) -> list[list[str]]:
        return [[name for name, p in zip(self.labels, row, strict=True) if p >= 0.5] for row in probs]


@pytest.fixture
def pools() -> Iterator[tuple[ThreadPoolExecutor, ThreadPoolExecutor]]:
    with ThreadPoolExecutor(1) as tokenize, ThreadPoolExecutor(1) as model:
        yield tokenize, model


def scorer_for(model: FakeModel, pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor],
               holder: dict[str, FakeModel] | None = None) -> tuple[Scorer, Metrics]:
    """A scorer of ``model`` (or of ``holder["model"]``, whatever it is when a batch starts)."""
    metrics = Metrics()
    current = holder if holder is not None else {"model": model}
    scorer = Scorer(lambda: current["model"], tokenizer_pool=pools[0], model_pool=pools[1], max_batch_tokens=4096,
                    metrics=metrics)
    return scorer, metrics


def comments(*texts: str) -> list[Comment]:
    return [Comment(f"{i + 1}-0", t, {"user": f"u{i}"}) for i, t in enumerate(texts)]


def outcome(finished: list[Finished]) -> dict[str, list[str] | str]:
    """entry id → labels, or the rejection's reason."""
    out: dict[str, list[str] | str] = {}
    for f in finished:
        assert f.entry_id not in out, "a comment came out twice"
        out[f.entry_id] = f.rejection.error if f.rejection else list(f.labels or [])
    return out


async def test_every_comment_is_scored_once(pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor]) -> None:
    model = FakeModel()
    scorer, metrics = scorer_for(model, pools)
    batch, failures = await scorer.encode(comments("abc", "xyz", "banana"))
    assert failures == []
    result = outcome(await scorer.score_batch(batch))
    assert result == {"1-0": ["A"], "2-0": [], "3-0": ["A"]}
    assert model.runs == [3] and metrics.batch_size._sum.get() == 3


async def test_a_poison_comment_is_found_by_splitting(pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor]) -> None:
    model = FakeModel(poison="boom", nan="nan!")
    scorer, _ = scorer_for(model, pools)
    texts = [f"c{i}a" for i in range(14)]
    texts[5], texts[9] = "boom", "nan!"
    batch, _ = await scorer.encode(comments(*texts))
    result = outcome(await scorer.score_batch(batch))
    assert len(result) == 14
    assert result["6-0"] == "model failed: RuntimeError: index out of range"
    assert result["10-0"] == "model produced non-finite scores"
    assert all(result[f"{i + 1}-0"] == ["A"] for i in range(14) if i not in (5, 9))
    assert 1 in model.runs and len(model.runs) <= 2 * 4 + 1  # a binary search, not a run per comment


async def test_out_of_memory_halves_the_batch(pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor]) -> None:
    model = FakeModel(max_rows=3)
    scorer, _ = scorer_for(model, pools)
    batch, _ = await scorer.encode(comments(*[f"a{i}" for i in range(12)]))
    result = outcome(await scorer.score_batch(batch))
    assert model.runs[:3] == [12, 6, 3] and all(v == ["A"] for v in result.values()) and len(result) == 12
    model.max_rows = 0  # not even one comment fits
    batch, _ = await scorer.encode(comments("a"))
    assert outcome(await scorer.score_batch(batch)) == {"1-0": "CUDA out of memory on a single comment"}


async def test_a_tokenizer_failure_rejects_only_that_comment(
        pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor]) -> None:
    scorer, _ = scorer_for(FakeModel(bad_token="§"), pools)
    batch, failures = await scorer.encode(comments("ok", "bad §", "fine"))
    assert [c.text for c in batch] == ["ok", "fine"]
    assert outcome(failures) == {"2-0": "tokenizer failed: ValueError: cannot tokenise"}
    assert failures[0].rejection is not None and failures[0].rejection.fields == {"user": "u1", "text": "bad §"}


async def test_a_swapped_model_reencodes_what_the_old_one_encoded(
        pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor]) -> None:
    old, new = FakeModel("fake:1"), FakeModel("fake:2", bad_token="~")
    holder = {"model": old}
    scorer, _ = scorer_for(old, pools, holder)
    batch, _ = await scorer.encode(comments("ab", "c~"))
    holder["model"] = new  # the swap point: the next batch
    finished = await scorer.score_batch(batch)
    assert new.encoded == ["ab"] and new.runs == [1] and old.runs == []
    assert outcome(finished) == {"2-0": "tokenizer failed: ValueError: cannot tokenise", "1-0": ["A"]}
    assert {f.model.tag for f in finished if f.model is not None} == {"fake:2"}
