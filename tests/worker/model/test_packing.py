"""Packed rows: several comments share a row of the graph (worker.model.chunks' packing, worker.model.traced's
packed forward). The arrays place every comment once, where its first token says; the packed forward scores
each comment as the network scores it alone (float32, exact to rounding); ONNX Runtime's int8 graph is packed
for BERT and RoBERTa and padded for DistilBERT."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from worker.errors import ModelError
from worker.model.chunks import PACKED_PASS_TOKENS, pack_rows, pad_chunks
from worker.model.load import load_model
from worker.model.onnx_export import quiet
from worker.model.traced import PACKED_INPUTS, PADDED_INPUTS, export_network
from worker.model.untrained import init_version

TEXTS = [
    "加油！",
    "好球 nice block 這球漂亮",
    "轉播卡住了",
    "😂",
    "教練喊暫停，換人了，這局要小心發球",
    "x" * 300,
    "好",
]


@pytest.mark.parametrize("seed", range(20))
def test_pack_rows_places_every_comment_once_within_the_capacity(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(1, 20), rng.randint(1, 90)]) for _ in range(rng.randint(0, 300))]
    capacity = rng.choice([1, 16, 64])
    rows = pack_rows(lengths, capacity)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    for row in rows:
        assert sum(lengths[i] for i in row) <= capacity or len(row) == 1
    # best fit, longest first: no two rows could have been one
    fills = sorted(sum(lengths[i] for i in row) for row in rows)
    assert len(fills) < 2 or fills[0] + fills[1] > capacity


def test_pack_rows_puts_a_few_short_comments_in_one_row() -> None:
    assert pack_rows([3, 5, 4], 64) == [[1, 2, 0]]
    assert pack_rows([40, 30, 20, 70], 64) == [[3], [0, 2], [1]]
    assert pack_rows([], 64) == []


@pytest.mark.parametrize(("width_step", "pass_tokens"), [(1, PACKED_PASS_TOKENS), (16, PACKED_PASS_TOKENS), (4, 2048)])
@pytest.mark.parametrize("seed", range(10))
def test_packed_chunks_place_each_comment_where_its_first_token_says(
    seed: int, width_step: int, pass_tokens: int
) -> None:
    """Every comment once, its tokens where its first token says, within the pass's budget (the smaller of
    ``max_tokens`` and ``pass_tokens``); each pass as wide as its fullest row, rounded up to ``width_step``."""
    rng = random.Random(seed)
    ids = [
        [rng.randint(5, 999) for _ in range(rng.choice([rng.randint(1, 15), rng.randint(1, 80)]))]
        for _ in range(rng.randint(1, 200))
    ]
    max_tokens = rng.choice([64, 4096])
    prepared = pad_chunks(ids, max_tokens, 0, 16, pack_tokens=64, width_step=width_step, pass_tokens=pass_tokens)
    assert sorted(i for chunk in prepared.chunks for i in chunk.rows) == list(range(len(ids)))
    assert prepared.tokens == sum(map(len, ids)) <= prepared.padded_tokens
    for chunk in prepared.chunks:
        packing = chunk.packing
        fill = int(chunk.attention_mask.sum(1).max())
        assert chunk.input_ids.shape[1] == -(-fill // width_step) * width_step
        assert packing is not None and chunk.input_ids.shape[0] * fill <= max(min(max_tokens, pass_tokens), fill)
        tokens, positions, sequences = (
            a.ravel() for a in (chunk.input_ids, packing.position_ids, packing.sequence_ids)
        )
        assert len(packing.first_tokens) == len(chunk.rows)
        for first, row in zip(packing.first_tokens, chunk.rows, strict=True):
            n = len(ids[row])
            assert tokens[first : first + n].tolist() == ids[row]
            assert positions[first : first + n].tolist() == list(range(n))
            assert len(set(sequences[first : first + n])) == 1 and sequences[first] >= 0
        # each comment's tokens form its sequence: as many real tokens as the comments have
        assert (sequences >= 0).sum() == chunk.attention_mask.sum() == sum(len(ids[r]) for r in chunk.rows)
        assert (tokens[sequences < 0] == 0).all()


@pytest.fixture(scope="module", params=["bert", "roberta"])
def packable(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp(f"packed-{request.param}")
    init_version(repo, preset="tiny", labels=["A", "B", "C"], texts=TEXTS, arch=request.param, name=request.param)
    return repo


def test_the_packed_forward_scores_each_comment_as_the_network_does(packable: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    reference = load_model(packable, device="cpu", dtype="float32", backend="torch", smoke_test=False)
    with quiet():
        export_network(packable / "1", tmp_path / "packed.onnx", packed=True, opset=17)
    session = ort.InferenceSession(str(tmp_path / "packed.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(PACKED_INPUTS)
    ids = reference.encode(TEXTS)
    prepared = pad_chunks(ids, 4096, reference.pad_id, 16, pack_tokens=24)  # several comments a row
    assert any(chunk.input_ids.shape[0] < len(chunk.rows) for chunk in prepared.chunks)
    logits = np.empty((len(TEXTS), 3), dtype=np.float32)
    for chunk in prepared.chunks:
        assert chunk.packing is not None
        logits[chunk.rows] = session.run(["logits"], chunk.feed(PACKED_INPUTS))[0]
    network = reference.backend.network  # type: ignore[attr-defined]
    import torch

    with torch.no_grad():
        expected = [network(input_ids=torch.tensor([row])).logits[0].numpy() for row in ids]
    np.testing.assert_allclose(logits, np.stack(expected), atol=1e-4)


def test_onnxruntime_int8_serves_packed_rows_where_the_architecture_has_them(packable: Path, tmp_path: Path) -> None:
    model = load_model(packable, device="cpu", dtype="int8", backend="onnxruntime")  # smoke test included
    assert model.backend.pack_tokens == 64
    packed = model.predict_texts(TEXTS)
    alone = np.concatenate([model.predict_texts([t]) for t in TEXTS])
    assert np.abs(packed - alone).max() < 0.02  # int8: the activations' scale is the pass's
    distil = tmp_path / "distil"
    init_version(distil, preset="tiny", labels=["A", "B"], texts=TEXTS, arch="distilbert", name="d")
    padded = load_model(distil, device="cpu", dtype="int8", backend="onnxruntime", smoke_test=False)
    assert padded.backend.pack_tokens == 0 and padded.backend._inputs == list(PADDED_INPUTS)


def test_a_packed_graph_refuses_chunks_of_one_comment_per_row(packable: Path) -> None:
    model = load_model(packable, device="cpu", dtype="int8", backend="onnxruntime", smoke_test=False)
    unpacked = pad_chunks(model.encode(TEXTS[:2]), 4096, model.pad_id, 16)
    with pytest.raises(ModelError, match="packed graph"):
        model.backend.probabilities(unpacked.chunks, True)
