"""The performance paths of worker.model: token-budget chunking, vectorised padding, engine resolution (backend
and dtype: ONNX Runtime int8, CPU bfloat16, the manifest's record) and row order."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from worker.errors import ModelError
from worker.model import precision as device_mod
from worker.model.chunks import plan_chunks
from worker.model.labels import label_names
from worker.model.load import load_model
from worker.model.precision import resolve_engine


def _padded(lengths: list[int], chunks: list[list[int]]) -> int:
    return sum(len(c) * max(lengths[i] for i in c) for c in chunks)


@pytest.mark.parametrize("seed", range(30))
def test_plan_chunks_partitions_rows_within_the_budget(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(3, 20), rng.randint(3, 70)]) for _ in range(rng.randint(0, 300))]
    max_tokens = rng.choice([8, 64, 512, 4096])
    chunks = plan_chunks(lengths, max_tokens, overhead_tokens=rng.choice([0, 8, 32, 2048]))
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    for chunk in chunks:
        assert chunk
        assert len(chunk) * max(lengths[i] for i in chunk) <= max_tokens or len(chunk) == 1


def test_plan_chunks_trades_padding_against_chunk_count() -> None:
    lengths = [5] * 10 + [6] * 10 + [40] * 3
    exact = plan_chunks(lengths, 10_000, overhead_tokens=0)
    assert _padded(lengths, exact) == sum(lengths)  # free chunks: no padding at all
    one = plan_chunks(lengths, 10_000, overhead_tokens=100_000)
    assert len(one) == 1  # expensive chunks: everything in one
    middle = plan_chunks(lengths, 10_000, overhead_tokens=32)
    assert len(middle) == 2 and _padded(lengths, middle) == 20 * 6 + 3 * 40
    assert plan_chunks([], 100) == []


def test_label_names_per_row_in_model_order() -> None:
    hits = np.array([[True, False, True], [False, False, False], [False, True, True], [True, True, False]])
    names = label_names(hits, ["cheer", "game", "chat"])
    assert names == [["cheer", "chat"], [], ["game", "chat"], ["cheer", "game"]]
    names[1].append("x")  # each row a list of its own
    assert names[0] == ["cheer", "chat"] and label_names(hits[:0], ["a", "b", "c"]) == []


def test_prepare_pads_rows_and_run_keeps_row_order(tiny_repo: Path) -> None:
    model = load_model(tiny_repo, device="cpu", dtype="float32", smoke_test=False)
    texts = ["加油！", "好球 nice block", "轉播卡住了", "x" * 300, "a", "攔網 攔網 攔網 攔網"] * 3
    ids = model.encode(texts)
    prepared = model.prepare(ids, max_tokens=40)
    for chunk in prepared.chunks:
        for r, i in enumerate(chunk.rows):
            n = len(ids[i])
            assert chunk.input_ids[r, :n].tolist() == ids[i]
            assert (chunk.input_ids[r, n:] == model.pad_id).all()
            assert chunk.attention_mask[r].sum().item() == n
    probs = model.run(prepared)
    one_by_one = np.concatenate([model.run(model.prepare([row], 4096)) for row in ids])
    np.testing.assert_allclose(probs, one_by_one, atol=1e-5)


@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_reduced_precision_stays_close_to_float32(tiny_repo: Path, dtype: str) -> None:
    texts = ["加油！", "好球 nice block", "轉播卡住了", "😂😂😂", "教練喊暫停"]
    ref = load_model(tiny_repo, device="cpu", dtype="float32", smoke_test=False).predict_texts(texts)
    low = load_model(tiny_repo, device="cpu", dtype=dtype)  # includes the smoke test
    assert low.dtype_name == dtype
    probs = low.predict_texts(texts)
    assert probs.shape == ref.shape and np.isfinite(probs).all()
    assert np.abs(probs - ref).max() < 0.02


AMX = {"amx_int8", "amx_bf16", "avx512_bf16"}  # the class where PyTorch bfloat16 follows int8


@pytest.mark.parametrize(
    ("flags", "agreement", "expected"),
    [
        ({"avx512_vnni", "avx512_bf16"}, None, ("onnxruntime", "int8")),
        (set(), None, ("onnxruntime", "int8")),  # ONNX Runtime's int8 runs (and wins) without VNNI too
        ({"amx_int8", "amx_bf16"}, {"torch:bfloat16": 0.999}, ("onnxruntime", "int8")),
        (AMX, {"onnxruntime:int8": 0.99}, ("torch", "bfloat16")),  # recorded too low: skipped
        (AMX, {"int8": 0.99}, ("torch", "bfloat16")),  # an old manifest's plain key counts too
        (AMX, {"onnxruntime:int8": 0.99, "torch:bfloat16": 0.9}, ("onnxruntime", "float32")),
        (AMX, {"onnxruntime:int8": 0.99, "bfloat16": 0.9}, ("onnxruntime", "float32")),
        ({"avx2"}, {"onnxruntime:int8": 0.995}, ("onnxruntime", "int8")),
        ({"avx2"}, {"onnxruntime:int8": 0.1, "float32": 0.1}, ("onnxruntime", "float32")),  # float32 always serves
    ],
)
def test_auto_engine_on_cpu(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], agreement: dict[str, float] | None, expected: tuple[str, str]
) -> None:
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(device_mod, "openvino_available", lambda: False)  # OpenVINO's place: test_openvino.py
    assert resolve_engine("cpu", "auto", "auto", agreement) == ("cpu", *expected)
    # asked for by name: served as asked, whatever the record says
    assert resolve_engine("cpu", "int8", "auto", agreement) == ("cpu", "onnxruntime", "int8")
    assert resolve_engine("cpu", "bfloat16", "auto", agreement) == ("cpu", "torch", "bfloat16")
    assert resolve_engine("cpu", "float32", "torch", agreement) == ("cpu", "torch", "float32")
    with pytest.raises(ModelError):
        resolve_engine("cpu", "float64")
    with pytest.raises(ModelError):
        resolve_engine("cpu", "auto", "tensorflow")


@pytest.mark.parametrize(
    ("flags", "agreement", "expected"),
    [
        (AMX, None, "bfloat16"),
        (AMX, {"torch:bfloat16": 0.99}, "float32"),
        ({"avx2"}, None, "float32"),
    ],
)
def test_auto_dtype_on_the_torch_backend(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], agreement: dict[str, float] | None, expected: str
) -> None:
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: frozenset(flags))
    assert resolve_engine("cpu", "auto", "torch", agreement) == ("cpu", "torch", expected)


def test_without_onnxruntime_auto_is_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: frozenset(AMX))
    monkeypatch.setattr(device_mod, "onnxruntime_available", lambda: False)
    assert resolve_engine("cpu") == ("cpu", "torch", "bfloat16")
    with pytest.raises(ModelError, match="not installed"):
        resolve_engine("cpu", "auto", "onnxruntime")


# the engines before PyTorch bfloat16 in the AMX order too low (OpenVINO int8 through the plain "int8" key)
AGREEMENT = {"onnxruntime:int8": 0.9, "openvino:bfloat16": 0.99, "torch:bfloat16": 0.999, "int8": 0.99}


def test_auto_engine_follows_the_manifest_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.model.repository import read_manifest, resolve_version
    from worker.model.untrained import init_version

    monkeypatch.setattr(device_mod, "cpu_flags", lambda: frozenset(AMX))
    init_version(
        tmp_path,
        preset="tiny",
        labels=["A", "B"],
        texts=["加油", "好球"],
        name="t",
        dtype_agreement=AGREEMENT,
    )
    vdir, _ = resolve_version(tmp_path)
    assert read_manifest(vdir).dtype_agreement == AGREEMENT
    model = load_model(tmp_path, device="cpu", smoke_test=False)
    assert (model.backend_name, model.dtype_name) == ("torch", "bfloat16")
    model = load_model(tmp_path, device="cpu", dtype="int8", smoke_test=False)
    assert (model.backend_name, model.dtype_name) == ("onnxruntime", "int8")


def test_int8_is_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    with pytest.raises(ModelError, match="CPU only"):
        resolve_engine("cuda", "int8")
    with pytest.raises(ModelError, match="runs float32, bfloat16, float16"):
        resolve_engine("cuda", "int8", "torch")
    with pytest.raises(ModelError):
        resolve_engine("cuda", "auto", "onnxruntime")
    assert resolve_engine("cuda") == ("cuda", "torch", "bfloat16")


def test_served_rate_ranks_by_full_and_small_batches() -> None:
    from worker.model.agreement import SMALL_BATCH, DtypeAgreement

    def engine(full: float, small: float | None) -> DtypeAgreement:
        return DtypeAgreement(1.0, 0.0, 0.0, full, {} if small is None else {SMALL_BATCH: small})

    assert engine(400.0, 100.0).served_rate == pytest.approx(200.0)  # geometric mean
    assert engine(400.0, None).served_rate == 400.0  # small batches not measured: the full batches' rate
    # the EPYC's engines before the layer norms were unfused: OpenVINO int8 led at 256 comments a pass only
    assert engine(185.9, 119.5).served_rate > engine(214.2, 91.4).served_rate


def test_small_batches_are_timed_on_shapes_met_before() -> None:
    """An engine that prepares its kernels per input shape (OpenVINO) is timed as a worker that has served a
    while: the small batches warm up on the very comments they are timed on; full batches on one batch."""
    from worker.model.agreement import measure_agreement

    class Recording:
        thresholds, multi_label = np.array([0.5], dtype=np.float32), True

        def __init__(self) -> None:
            self.calls: list[tuple[int, int]] = []

        def predict_texts(self, texts: list[str], batch_size: int = 64, max_tokens: int = 8192) -> np.ndarray:
            self.calls.append((len(texts), batch_size))
            return np.full((len(texts), 1), 0.9, dtype=np.float32)

        def hits(self, probs: np.ndarray) -> np.ndarray:
            return probs > self.thresholds

    model = Recording()

    def load(name: str) -> Any:
        return model

    found = measure_agreement(load, ["好"] * 100, ["float32"], batch_size=8, small_batches=(4,), small_n=16)
    assert model.calls == [(8, 8), (100, 8), (16, 4), (16, 4)]
    assert found["float32"].label_agreement == 1.0 and set(found["float32"].small_batch_comments_per_s) == {4}
