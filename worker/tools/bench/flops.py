"""Compute ceilings for ``livetopic bench``: a model's forward FLOPs per comment from its config, and the
device's measured matrix-multiply rate in a given dtype (for int8: ONNX Runtime's uint8 × int8 → int32 operations
per second).

FLOPs count multiply-adds as two operations and include only the matrix products (projections, feed-forward,
attention scores and mixing, pooler, classifier); embeddings, layer norms, activations and softmax are a few
percent on top and left out, so the ceiling is an upper bound on what the model could reach.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EncoderShape",
    "encoder_shape",
    "forward_flops",
    "matmul_rate",
    "mean_forward_flops",
    "onnxruntime_int8_rate",
]


@dataclass(frozen=True, slots=True)
class EncoderShape:
    layers: int
    hidden: int
    intermediate: int
    labels: int
    pooler: bool = True


def encoder_shape(config: Any) -> EncoderShape:
    """The shape of a BERT-like encoder from its transformers config (BERT, RoBERTa, DistilBERT names)."""

    def first(*names: str) -> int:
        for name in names:
            value = getattr(config, name, None)
            if value is not None:
                return int(value)
        raise ValueError(f"config has none of {names}")

    # BERT's pooler, DistilBERT's pre_classifier and RoBERTa's head dense are all one h×h product.
    return EncoderShape(
        layers=first("num_hidden_layers", "n_layers", "num_layers"),
        hidden=first("hidden_size", "dim", "d_model"),
        intermediate=first("intermediate_size", "hidden_dim", "ffn_dim"),
        labels=first("num_labels"),
    )


def forward_flops(shape: EncoderShape, tokens: int) -> float:
    """FLOPs of one forward pass over one sequence of ``tokens`` tokens (no padding)."""
    h, n = shape.hidden, tokens
    per_layer = 2 * n * (4 * h * h + 2 * h * shape.intermediate) + 4 * n * n * h
    head = 2 * h * h + 2 * h * shape.labels if shape.pooler else 2 * h * shape.labels
    return float(shape.layers * per_layer + head)


def mean_forward_flops(shape: EncoderShape, lengths: Iterable[int]) -> float:
    """Mean FLOPs per comment over the token counts ``lengths``."""
    values = [forward_flops(shape, n) for n in lengths]
    if not values:
        raise ValueError("no token counts")
    return sum(values) / len(values)


def _gemm_shapes(shape: EncoderShape, rows: int) -> list[tuple[int, int, int]]:
    h, i = shape.hidden, shape.intermediate
    return [(rows, h, 3 * h), (rows, h, h), (rows, h, i), (rows, i, h)]


def _best_rate(
    shape: EncoderShape,
    rows: Iterable[int],
    seconds: float,
    product: Callable[[int, int, int], Callable[[], object]],
    sync: Callable[[], None] = lambda: None,
    per_sync: int = 1,
) -> float:
    """The best, over ``rows``, of the time-weighted FLOP/s of the layer's GEMMs (QKV, output, feed-forward up and
    down); ``product(m, k, n)`` makes operands and returns the call to time; ``seconds`` per shape after warm-up."""
    best = 0.0
    for m in rows:
        flops = elapsed = 0.0
        for mm, k, n in _gemm_shapes(shape, m):
            call = product(mm, k, n)
            for _ in range(2):
                call()
            sync()
            reps, started = 0, time.perf_counter()
            while True:
                for _ in range(per_sync):
                    call()
                reps += per_sync
                sync()
                spent = time.perf_counter() - started
                if spent >= seconds:
                    break
            flops += 2.0 * mm * k * n * reps
            elapsed += spent
        best = max(best, flops / elapsed)
    return best


def matmul_rate(
    device: str, dtype: str, shape: EncoderShape, *, rows: Iterable[int] | None = None, seconds: float = 0.4
) -> float:
    """Measured FLOP/s of the encoder's own matrix products (``x @ Wᵀ + b`` at ``rows`` tokens) in ``dtype``
    (float32, bfloat16, float16) on ``device`` with PyTorch. Default ``rows``: 1024-4096 tokens on CPU,
    4096-16384 on GPUs (which need larger products to fill)."""
    import torch

    cuda = device.startswith("cuda")
    generator = torch.Generator(device="cpu").manual_seed(0)
    torch_dtype = getattr(torch, dtype)

    def product(m: int, k: int, n: int) -> Callable[[], object]:
        x, w, b = (
            torch.randn(*size, generator=generator).to(device=device, dtype=torch_dtype)
            for size in ((m, k), (n, k), (n,))
        )
        return functools.partial(torch.nn.functional.linear, x, w, b)

    with torch.inference_mode():
        return _best_rate(
            shape,
            rows or ((4096, 8192, 16384) if cuda else (1024, 2048, 4096)),
            seconds,
            product,
            torch.cuda.synchronize if cuda else lambda: None,
            4 if cuda else 1,
        )


def _onnx_int8_product(k: int, n: int, seed: int) -> bytes:
    """An ONNX graph ``A (uint8 [m, k]) × W (int8 [k, n]) → int32``: the integer product ONNX Runtime's
    dynamically quantised layers run (MatMulInteger)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(seed).integers(-127, 128, size=(k, n), dtype=np.int8)
    node = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
    graph = helper.make_graph(
        [node],
        "int8_product",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, ["m", k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ["m", n])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def onnxruntime_int8_rate(
    shape: EncoderShape, threads: int, *, rows: Iterable[int] = (1024, 2048, 4096), seconds: float = 0.4
) -> float:
    """Measured int8 operations per second of ONNX Runtime's integer product (uint8 × int8 → int32, the kernel
    under its int8 layers; it uses VNNI/AMX where the CPU has them) at the encoder's GEMM shapes with ``threads``
    intra-op threads."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    generator = np.random.default_rng(0)

    def product(m: int, k: int, n: int) -> Callable[[], object]:
        session = ort.InferenceSession(_onnx_int8_product(k, n, k * 7 + n), options, providers=["CPUExecutionProvider"])
        feed = {"a": generator.integers(0, 256, size=(m, k), dtype=np.uint8)}
        return functools.partial(session.run, None, feed)

    return _best_rate(shape, rows, seconds, product)
