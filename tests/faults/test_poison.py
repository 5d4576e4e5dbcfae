"""Poison batches: a batch the model fails on is split to find the comment(s) at fault; only those are
dead-lettered. Non-finite rows are dead-lettered; CUDA out-of-memory halves the batch and retries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from worker.errors import ModelOutOfMemoryError
from worker.model.chunks import Chunk, Prepared
from worker.model.runtime import LoadedModel
from worker.tools.embedded import EmbeddedRedis

from ..inprocess import make_worker, sample
from .conftest import assert_exactly_once, push, running, wait_finished

POISON = "毒" * 37  # a distinctive token sequence the patched model recognises
NAN = "壞" * 29
TEXTS = ["加油！", "好球 nice block", "轉播卡住了", "😂😂😂", "主審在看哪裡", "晚安大家", "換人了", "攔網漂亮"] * 4


def comments(chunk: Chunk) -> list[tuple[int, list[int]]]:
    """(batch row, token ids) of each comment of ``chunk``: one a row, or packed several a row."""
    ids = np.asarray(chunk.input_ids)  # numpy (ONNX Runtime) or torch (PyTorch) arrays, as the backend staged them
    if chunk.packing is None:
        mask = np.asarray(chunk.attention_mask).astype(bool)
        return [(row, ids[r][mask[r]].tolist()) for r, row in enumerate(chunk.rows)]
    width, sequences = ids.shape[1], chunk.packing.sequence_ids
    found = []
    for first, row in zip(chunk.packing.first_tokens.tolist(), chunk.rows, strict=True):
        r = first // width
        found.append((row, ids[r][sequences[r] == sequences[r, first % width]].tolist()))
    return found


def rows_with(prepared: Prepared, marker: list[int]) -> list[int]:
    """Batch rows (original order) whose token ids are ``marker``."""
    return [row for chunk in prepared.chunks for row, tokens in comments(chunk) if tokens == marker]


@pytest.fixture
def markers(tiny_model: LoadedModel) -> dict[str, list[int]]:
    return {text: tiny_model.encode([text])[0] for text in (POISON, NAN)}


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch, markers: dict[str, list[int]]) -> list[int]:
    """Patch LoadedModel.run: raise on batches containing POISON, NaN rows for NAN; record batch sizes."""
    seen: list[int] = []
    real_run = LoadedModel.run

    def run(self: LoadedModel, prepared: Prepared) -> np.ndarray:
        seen.append(prepared.size)
        if rows_with(prepared, markers[POISON]):
            raise RuntimeError("index out of range in self")
        probs = real_run(self, prepared)
        probs[rows_with(prepared, markers[NAN])] = np.nan
        return probs

    monkeypatch.setattr(LoadedModel, "run", run)
    return seen


async def test_poison_comment_is_isolated_and_the_rest_classified(
    redis_server: EmbeddedRedis,
    redis_client: aioredis.Redis,
    tiny_repo: Path,
    tiny_model: LoadedModel,
    batch_sizes: list[int],
) -> None:
    texts = [*TEXTS[:13], POISON, *TEXTS[13:27], NAN, *TEXTS[27:]]
    ids = await push(redis_client, [{"text": t, "user": f"u{i}"} for i, t in enumerate(texts)])
    # One big batch: the poison comment fails it, splitting isolates it.
    worker = make_worker(redis_server.url, tiny_repo, tiny_model, max_batch_size=64, max_wait_ms=300)
    async with running(worker) as task:
        await wait_finished(redis_client, ids, task=task)
    dead = await assert_exactly_once(redis_client, ids)
    poison_id, nan_id = ids[texts.index(POISON)], ids[texts.index(NAN)]
    assert set(dead) == {poison_id, nan_id}
    assert dead[poison_id]["error"] == "model failed: RuntimeError: index out of range in self"
    assert dead[poison_id]["text"] == POISON and dead[poison_id]["user"] == "u13"
    assert dead[nan_id]["error"] == "model produced non-finite scores" and dead[nan_id]["text"] == NAN
    assert batch_sizes[0] == len(texts) and 1 in batch_sizes  # split down to the single culprit
    assert len(batch_sizes) <= 2 * 6 + 1  # a binary search, not one run per comment
    assert sample(worker, "livetopic_comments_total", outcome="classified") == len(texts) - 2


async def test_cuda_oom_halves_the_batch(
    redis_server: EmbeddedRedis,
    redis_client: aioredis.Redis,
    tiny_repo: Path,
    tiny_model: LoadedModel,
    markers: dict[str, list[int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []
    real_run = LoadedModel.run

    def run(self: LoadedModel, prepared: Prepared) -> np.ndarray:
        seen.append(prepared.size)
        if prepared.size > 4 or rows_with(prepared, markers[POISON]):
            raise ModelOutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_run(self, prepared)

    monkeypatch.setattr(LoadedModel, "run", run)
    texts = [*TEXTS[:16], POISON]
    ids = await push(redis_client, [{"text": t} for t in texts])
    worker = make_worker(redis_server.url, tiny_repo, tiny_model, max_batch_size=64, max_wait_ms=300)
    async with running(worker) as task:
        await wait_finished(redis_client, ids, task=task)
    dead = await assert_exactly_once(redis_client, ids)
    assert list(dead) == [ids[-1]] and dead[ids[-1]]["error"] == "CUDA out of memory on a single comment"
    assert seen[:4] == [17, 8, 4, 4]  # halved until it fits
    assert sample(worker, "livetopic_comments_total", outcome="classified") == 16


async def test_tokenizer_failure_is_isolated(
    redis_server: EmbeddedRedis,
    redis_client: aioredis.Redis,
    tiny_repo: Path,
    tiny_model: LoadedModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_encode = LoadedModel.encode

    def encode(self: LoadedModel, texts: list[str]) -> list[list[int]]:
        if POISON in texts:
            raise ValueError("tokenizer exploded")
        return real_encode(self, texts)

    monkeypatch.setattr(LoadedModel, "encode", encode)
    texts = [*TEXTS[:5], POISON, *TEXTS[5:10]]
    ids = await push(redis_client, [{"text": t} for t in texts])
    worker = make_worker(redis_server.url, tiny_repo, tiny_model)
    async with running(worker) as task:
        await wait_finished(redis_client, ids, task=task)
    dead = await assert_exactly_once(redis_client, ids)
    assert list(dead) == [ids[5]] and dead[ids[5]]["error"] == "tokenizer failed: ValueError: tokenizer exploded"
