"""The fused layer norm split back in memory (worker.model.onnx_edit): ONNX Runtime gives the same numbers for
the split graph as for the fused one, with and without its bias and its sum output, leaves graphs it cannot
split alone, and the backend serves a published graph that still has the fused node with the file untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from worker.model.backends import onnxruntime as backend
from worker.model.onnx_edit import split_skip_layer_norms

HIDDEN = 16


def _graph(*, bias: bool, total: bool, beta: bool = True, opset: int = 17) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inputs = ["x", "s", "g", "b" if beta else "", "c" if bias else ""]
    inits = [numpy_helper.from_array(rng.standard_normal(HIDDEN).astype(np.float32), n) for n in inputs[2:] if n]
    outputs = ["y", "", "", "t" if total else ""]
    node = helper.make_node("SkipLayerNormalization", inputs, outputs, domain="com.microsoft", epsilon=1e-5, name="sln")
    values = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", "s", HIDDEN]) for n in ("x", "s")]
    results = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", "s", HIDDEN]) for n in ("y", "t")[: 1 + total]]
    graph = helper.make_graph([node], "g", values, results, initializer=inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    return model


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [np.asarray(out) for out in session.run(None, feed)]


@pytest.mark.parametrize(("bias", "total", "beta"), [(False, False, True), (True, True, True), (True, False, False)])
def test_split_graph_computes_what_the_fused_one_does(bias: bool, total: bool, beta: bool) -> None:
    rng = np.random.default_rng(1)
    feed = {n: rng.standard_normal((3, 5, HIDDEN)).astype(np.float32) for n in ("x", "s")}
    fused = _graph(bias=bias, total=total, beta=beta)
    expected = _run(fused, feed)
    split = onnx.ModelProto()
    split.CopyFrom(fused)
    assert split_skip_layer_norms(split) == 1
    onnx.checker.check_model(split)
    assert [n.op_type for n in split.graph.node] == ["Add", *(["Add"] if bias else []), "LayerNormalization"]
    got = _run(split, feed)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_graphs_it_cannot_split_are_left_alone() -> None:
    old = _graph(bias=False, total=False, opset=16)  # no LayerNormalization before opset 17
    assert split_skip_layer_norms(old) == 0 and old.graph.node[0].op_type == "SkipLayerNormalization"
    asked = _graph(bias=False, total=False)
    asked.graph.node[0].output[1] = "mean"  # its mean asked for: LayerNormalization's would differ in shape
    assert split_skip_layer_norms(asked) == 0


def test_the_backend_splits_a_published_fused_graph_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "fused.onnx"
    onnx.save(_graph(bias=True, total=False), str(path))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    source = backend._source(path)
    assert isinstance(source, bytes)
    assert "SkipLayerNormalization" not in {n.op_type for n in onnx.load_from_string(source).graph.node}
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # the file is not touched
    plain = tmp_path / "plain.onnx"
    onnx.save(onnx.load_from_string(source), str(plain))
    assert backend._source(plain) == str(plain)  # nothing to split: ORT reads the file itself
