"""The lean BERT forward computes what transformers computes, from the same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worker.model.kernels.fastbert import FastBert, fast_path_reason
from worker.model.load import load_model
from worker.model.untrained import init_version

TEXTS = ["加油！", "好球 nice block 這球漂亮", "轉播卡住了", "😂", "教練喊暫停，換人了，這局要小心發球", "x" * 300]


def _padded_batch(model: object) -> tuple[object, object]:
    prepared = model.prepare(model.encode(TEXTS), max_tokens=10_000)  # type: ignore[attr-defined]
    assert len(prepared.chunks) >= 1
    chunk = max(prepared.chunks, key=lambda c: len(c.rows))
    assert int(chunk.attention_mask.sum()) < chunk.attention_mask.numel()  # really padded
    return chunk.input_ids, chunk.attention_mask


def test_float32_logits_equal_transformers(tiny_repo: Path) -> None:
    import torch

    model = load_model(tiny_repo, device="cpu", dtype="float32", smoke_test=False)
    assert model.backend.fast_path is not None and model.backend.description == "lean BERT forward"
    ids, mask = _padded_batch(model)
    with torch.inference_mode():
        expected = model.backend.network(input_ids=ids, attention_mask=mask).logits
        got = model.backend.fast_path(ids, mask)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int8"])
def test_worker_probabilities_match_the_transformers_path(tiny_repo: Path, dtype: str) -> None:
    fast = load_model(tiny_repo, device="cpu", dtype=dtype, smoke_test=False)
    slow = load_model(tiny_repo, device="cpu", dtype=dtype, smoke_test=False)
    slow.backend.fast_path = None
    a, b = fast.predict_texts(TEXTS), slow.predict_texts(TEXTS)
    assert a.shape == b.shape == (len(TEXTS), len(fast.labels))
    assert np.abs(a - b).max() < {"float32": 1e-5, "bfloat16": 0.02, "int8": 0.02}[dtype]


def test_fused_int8_projection_is_the_three_separate_ones() -> None:
    import torch

    from worker.model.kernels.int8 import int8_linear_class

    torch.manual_seed(0)
    int8 = int8_linear_class()
    parts = [int8.from_linear(torch.nn.Linear(32, 32)) for _ in range(3)]
    x = torch.randn(4, 5, 32)
    with torch.inference_mode():
        fused = int8.concatenated(parts)(x)
        assert torch.equal(fused, torch.cat([p(x) for p in parts], dim=-1))


@pytest.mark.parametrize("arch", ["distilbert", "roberta"])
def test_other_architectures_run_through_transformers(tmp_path: Path, arch: str) -> None:
    init_version(tmp_path, preset="tiny", labels=["A", "B"], texts=TEXTS, arch=arch, name=arch)  # type: ignore[arg-type]
    model = load_model(tmp_path, device="cpu", dtype="float32")
    assert model.backend.fast_path is None and model.backend.description.startswith("transformers forward: ")
    with pytest.raises(ValueError, match="no fast path"):
        FastBert(model.backend.network)
    assert np.isfinite(model.predict_texts(TEXTS)).all()


def test_reasons_name_what_is_unsupported(tiny_repo: Path) -> None:
    model = load_model(tiny_repo, device="cpu", dtype="float32", smoke_test=False)
    assert fast_path_reason(model.backend.network) is None
    model.backend.network.config.hidden_act = "relu"
    assert fast_path_reason(model.backend.network) == "activation relu"


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_a_model_is_freed_without_the_cyclic_collector(tiny_repo: Path, dtype: str) -> None:
    """The worker freezes what it loaded at start (gc.freeze); a model replaced by a reload must then still
    be freed, which holds only if a loaded model has no reference cycles."""
    import gc
    import weakref

    model = load_model(tiny_repo, device="cpu", dtype=dtype)
    model.predict_texts(TEXTS)
    network = model.backend.network
    refs = [weakref.ref(model), weakref.ref(network), weakref.ref(network.bert.encoder.layer[0])]
    del network
    gc.disable()
    try:
        del model
        assert [r() for r in refs] == [None, None, None]
    finally:
        gc.enable()


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_fused_projection_shares_the_weights(tiny_repo: Path, dtype: str) -> None:
    model = load_model(tiny_repo, device="cpu", dtype=dtype, smoke_test=False)
    attention = model.backend.network.bert.encoder.layer[0].attention.self
    q, k, v = (attention.query.weight, attention.key.weight, attention.value.weight)
    assert q.data_ptr() < k.data_ptr() < v.data_ptr()
    assert k.untyped_storage().data_ptr() == q.untyped_storage().data_ptr() == v.untyped_storage().data_ptr()
    slow = load_model(tiny_repo, device="cpu", dtype=dtype, smoke_test=False)
    slow.backend.fast_path = None  # the transformers path reads the views: still the same function
    assert np.abs(model.predict_texts(TEXTS) - slow.predict_texts(TEXTS)).max() < 1e-5
