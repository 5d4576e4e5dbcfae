"""Edits of an ONNX graph made in memory as it is loaded: never written back, so a published graph keeps the sha256
its manifest lists.

One edit for now: ``SkipLayerNormalization`` (ONNX Runtime's fusion of a residual add and its layer norm) split
back into ``Add`` and ``LayerNormalization``, which ONNX Runtime 1.31 runs 4.7 times as fast on CPU (see
:mod:`.onnx_export`). Graphs exported now never have it; graphs published before the export stopped fusing it do.
"""

from __future__ import annotations

from typing import Any

__all__ = ["split_skip_layer_norms"]

_FUSED = "SkipLayerNormalization"
_MIN_OPSET = 17  # LayerNormalization's first opset


def _default_opset(model: Any) -> int:
    return max((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _splittable(node: Any) -> bool:
    """A fused node whose mean and inverse deviation outputs nobody asked for (inference graphs never do)."""
    outputs = list(node.output)
    return node.op_type == _FUSED and node.domain == "com.microsoft" and not any(outputs[1:3])


def _split(node: Any, index: int) -> list[Any]:
    from onnx import helper

    inputs = list(node.input) + [""] * (5 - len(node.input))
    source, skip, gamma, beta, bias = inputs[:5]
    outputs = list(node.output) + [""] * (4 - len(node.output))
    epsilon = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "epsilon"), 1e-12)
    base = node.name or f"skip_layer_norm_{index}"
    total = outputs[3] or f"{base}/sum"
    added = f"{base}/input_skip" if bias else total
    nodes = [helper.make_node("Add", [source, skip], [added], name=f"{base}/Add")]
    if bias:
        nodes.append(helper.make_node("Add", [added, bias], [total], name=f"{base}/AddBias"))
    norm_inputs = [total, gamma] + ([beta] if beta else [])
    nodes.append(
        helper.make_node(
            "LayerNormalization", norm_inputs, [outputs[0]], name=f"{base}/LayerNorm", axis=-1, epsilon=float(epsilon)
        )
    )
    return nodes


def split_skip_layer_norms(model: Any) -> int:
    """Replace, in place, every splittable ``SkipLayerNormalization`` of ``model`` (an ``onnx.ModelProto``) by
    ``Add`` (and ``Add`` of its bias) and ``LayerNormalization``; returns how many. A graph whose default opset
    is below 17 (no ``LayerNormalization``) is left as it is."""
    graph = model.graph
    if _default_opset(model) < _MIN_OPSET:
        return 0
    edited, count = [], 0
    for index, node in enumerate(graph.node):
        if _splittable(node):
            edited.extend(_split(node, index))
            count += 1
        else:
            edited.append(node)
    if count:  # a graph with nothing to split keeps its node list as it was
        del graph.node[:]
        graph.node.extend(edited)
    return count
