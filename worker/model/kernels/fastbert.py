"""A lean inference forward for BERT sequence classifiers on CPU.

``transformers``' BERT spends, per forward pass, a few hundred nn.Module calls, output-capturing wrappers
and a signature inspection per layer; for the small batches a worker runs below saturation that Python
time is a third of the pass. :class:`FastBert` computes the same function from the same weights in plain
tensor operations (query, key and value in one product; int8 products where the model was quantised),
with no module tree. It covers the common case, ``BertForSequenceClassification`` with absolute positions,
GELU and a pooler, and says so through :func:`fast_path_reason`; anything else runs through transformers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

__all__ = ["FastBert", "fast_path_reason"]


def fast_path_reason(network: Any) -> str | None:
    """None when :class:`FastBert` can run ``network``; else why not."""
    config = network.config
    if type(network).__name__ != "BertForSequenceClassification" or getattr(config, "model_type", "") != "bert":
        return f"architecture {type(network).__name__}"
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return f"position embeddings {config.position_embedding_type}"
    if config.hidden_act != "gelu":
        return f"activation {config.hidden_act}"
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return "decoder"
    if getattr(network.bert, "pooler", None) is None:
        return "no pooler"
    return None


def _projection(layer: Any) -> Callable[[Any], Any]:
    """``x ↦ x @ Wᵀ + b`` for a float Linear, or an int8 layer's forward (``worker.int8``), without the
    nn.Module call machinery."""
    import torch

    if isinstance(layer, torch.nn.Linear):
        return functools.partial(torch.nn.functional.linear, weight=layer.weight, bias=layer.bias)
    return layer.forward


def _fused_qkv(attention: Any) -> Callable[[Any], Any]:
    """Query, key and value as one projection (one product instead of three). The three layers' tensors
    become views of the fused ones, so the weights are not held twice."""
    import torch

    from .int8 import int8_linear_class

    parts = (attention.query, attention.key, attention.value)
    int8 = int8_linear_class()
    names: tuple[str, ...]
    if all(isinstance(p, int8) for p in parts):
        fused = int8.concatenated(parts)
        names = ("weight", "scale", "bias")
    else:
        weight = torch.cat([p.weight.detach() for p in parts])
        fused = torch.nn.Linear(weight.shape[1], weight.shape[0], device=weight.device, dtype=weight.dtype)
        fused.requires_grad_(False)
        fused.weight.copy_(weight)
        fused.bias.copy_(torch.cat([p.bias.detach() for p in parts]))
        names = ("weight", "bias")
    start = 0
    for part in parts:
        rows = part.weight.shape[0]
        for name in names:
            view = getattr(fused, name)[start : start + rows]
            setattr(part, name, torch.nn.Parameter(view, requires_grad=False) if isinstance(part, torch.nn.Linear)
                    else view)
        start += rows
    return _projection(fused)


class FastBert:
    """Logits of a ``BertForSequenceClassification`` (eval mode) from ``input_ids`` and ``attention_mask``."""

    def __init__(self, network: Any) -> None:
        reason = fast_path_reason(network)
        if reason is not None:
            raise ValueError(f"no fast path: {reason}")
        config, bert = network.config, network.bert
        emb = bert.embeddings
        self.word = emb.word_embeddings.weight
        self.position = emb.position_embeddings.weight
        self.token_type = emb.token_type_embeddings.weight[0]
        self.emb_norm = (emb.LayerNorm.weight, emb.LayerNorm.bias, emb.LayerNorm.eps)
        self.heads = int(config.num_attention_heads)
        self.head_dim = int(config.hidden_size) // self.heads
        self.layers = []
        for layer in bert.encoder.layer:
            attention = layer.attention
            out_norm, ffn_norm = attention.output.LayerNorm, layer.output.LayerNorm
            self.layers.append((_fused_qkv(attention.self), _projection(attention.output.dense),
                                (out_norm.weight, out_norm.bias, out_norm.eps),
                                _projection(layer.intermediate.dense), _projection(layer.output.dense),
                                (ffn_norm.weight, ffn_norm.bias, ffn_norm.eps)))
        self.pooler = _projection(bert.pooler.dense)
        self.classifier = _projection(network.classifier)
        self.scale = 1.0 / math.sqrt(self.head_dim)

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        import torch
        from torch.nn import functional as F

        batch, length = input_ids.shape
        hidden_size = self.heads * self.head_dim
        x = F.embedding(input_ids, self.word) + self.position[:length] + self.token_type
        x = F.layer_norm(x, (hidden_size,), *self.emb_norm[:2], eps=self.emb_norm[2])
        dtype = x.dtype
        # additive mask over keys: 0 where attended, the dtype's minimum where padding
        mask = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
        for qkv, out, out_norm, up, down, ffn_norm in self.layers:
            q, k, v = qkv(x).view(batch, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            scores = torch.matmul(q, k.transpose(-1, -2)).mul_(self.scale).add_(mask)
            context = torch.matmul(torch.softmax(scores, dim=-1), v)
            context = context.transpose(1, 2).reshape(batch, length, hidden_size)
            x = F.layer_norm(out(context).add_(x), (hidden_size,), out_norm[0], out_norm[1], eps=out_norm[2])
            h = F.gelu(up(x))
            x = F.layer_norm(down(h).add_(x), (hidden_size,), ffn_norm[0], ffn_norm[1], eps=ffn_norm[2])
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return self.classifier(pooled)
