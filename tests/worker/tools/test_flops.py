"""FLOP counts and the matrix-multiply rate used for the bench's compute ceiling."""

from __future__ import annotations

import math

from transformers import BertConfig, DistilBertConfig

from worker.tools.bench.flops import (
    EncoderShape,
    encoder_shape,
    forward_flops,
    matmul_rate,
    mean_forward_flops,
    onnxruntime_int8_rate,
)


def test_forward_flops_of_bert_base() -> None:
    shape = encoder_shape(BertConfig(num_labels=4))
    assert shape == EncoderShape(layers=12, hidden=768, intermediate=3072, labels=4)
    # 12 × (2·n·(4h² + 2h·4h) + 4n²h) + pooler 2h² + classifier 2h·labels
    n = 10
    expected = 12 * (2 * n * (4 * 768**2 + 2 * 768 * 3072) + 4 * n * n * 768) + 2 * 768**2 + 2 * 768 * 4
    assert forward_flops(shape, n) == expected
    assert 1.6e9 < forward_flops(shape, 10) < 1.8e9  # ~170 MFLOP per token
    assert mean_forward_flops(shape, [10, 20]) == (forward_flops(shape, 10) + forward_flops(shape, 20)) / 2


def test_encoder_shape_reads_distilbert_names() -> None:
    shape = encoder_shape(DistilBertConfig(n_layers=3, dim=64, hidden_dim=128, n_heads=2, num_labels=2))
    assert shape == EncoderShape(layers=3, hidden=64, intermediate=128, labels=2)


def test_matmul_rate_is_positive() -> None:
    shape = EncoderShape(layers=1, hidden=64, intermediate=128, labels=2)
    rate = matmul_rate("cpu", "float32", shape, rows=(32,), seconds=0.01)
    assert rate > 0 and math.isfinite(rate)


def test_onnxruntime_int8_rate_is_positive() -> None:
    shape = EncoderShape(layers=1, hidden=64, intermediate=128, labels=2)
    rate = onnxruntime_int8_rate(shape, 1, rows=(32,), seconds=0.01)
    assert rate > 0 and math.isfinite(rate)
