"""A version's network as the ONNX exporter traces it: **padded** (any sequence classifier: ``input_ids`` and
``attention_mask``, one comment per row) or **packed** (BERT and RoBERTa: several comments share a row).

A packed graph takes ``input_ids``, ``position_ids`` (each token's place in its comment), ``sequence_ids`` (which
comment of its row a token belongs to, -1 for padding; tokens attend within their comment only) and
``first_tokens`` (the flat index, over ``rows × width``, of each comment's first token, in output order); its
``logits`` are one row per comment. Chat comments are short (12 tokens on average), and a pass costs about as
much per token fed, padding included, whatever the row width up to a few dozen tokens: rows of several
comments carry less padding than one comment per row, and a handful of comments (the half-loaded worker's batch)
is one pass instead of a pass per length (:mod:`.chunks`, docs/PERFORMANCE.md).

The packed forward is written per architecture (the encoder with the block-diagonal mask and the given
positions, then the classifier's head on each comment's first token), with transformers' own modules; two
changes to their order of work, the same scores to rounding: the last layer runs past its attention on the first
tokens only (nothing else reaches the head), and the attention takes the keys' product in a form OpenVINO runs
without moving each key value on its own (:func:`_packed_attention`). Other architectures (DistilBERT, whose
embeddings take no positions) export padded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelError

__all__ = ["PACKED_INPUTS", "PADDED_INPUTS", "export_network"]

PADDED_INPUTS = ("input_ids", "attention_mask")
PACKED_INPUTS = ("input_ids", "position_ids", "sequence_ids", "first_tokens")


_ATTENTION = "livetopic_packed"  # the name :func:`_packed_attention` is registered under with transformers


def _packed_attention(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float, **_: Any
) -> tuple[Any, None]:
    """transformers' eager attention (``[rows, heads, width, dim]`` arrays in, ``[rows, width, heads, dim]`` out),
    with the keys' product taken over ``[rows × heads, width, dim]`` arrays: traced so, OpenVINO moves the keys'
    heads as it moves the queries' (whole rows of 64 values) and multiplies by their transpose inside the product;
    transformers' own form (the keys transposed to ``[rows, heads, dim, width]``) made it move each value on its
    own, 4% of a pass (bert-base int8 on the AMX Xeon, where this form serves 3-8% more comments/s:
    docs/PERFORMANCE.md)."""
    import torch

    rows, heads, width, dim = query.shape
    flat = (rows * heads, width, dim)
    scores = torch.bmm(query.reshape(flat), key.reshape(flat).transpose(1, 2)).reshape(rows, heads, width, width)
    scores = scores * scaling if attention_mask is None else scores * scaling + attention_mask
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


def _use_packed_attention(network: Any) -> None:
    """Have the attention layers of ``network`` (loaded to be exported) run :func:`_packed_attention`, where
    transformers dispatches attention by name (BERT's and RoBERTa's in transformers 5); elsewhere their own
    attention runs, the same scores."""
    try:
        from transformers import AttentionInterface
    except ImportError:
        return
    AttentionInterface.register(_ATTENTION, _packed_attention)
    network.config._attn_implementation = _ATTENTION


def _encoder_and_head(network: Any) -> tuple[Any, int, Any] | None:
    """(the encoder, where its positions start, the classifier's head on each comment's first token) of a BERT or
    RoBERTa classifier; None for another architecture."""
    from transformers import BertForSequenceClassification, RobertaForSequenceClassification

    if isinstance(network, BertForSequenceClassification) and network.bert.pooler is not None:
        pooler = network.bert.pooler
        return network.bert, 0, lambda first: network.classifier(pooler.activation(pooler.dense(first)))
    if isinstance(network, RobertaForSequenceClassification):
        encoder = network.roberta  # its positions start after its padding index
        return encoder, int(encoder.embeddings.padding_idx) + 1, lambda first: network.classifier(first[:, None, :])
    return None


def _packed_module(network: Any) -> Any:
    """A module computing ``network``'s logits from packed inputs, or None for an architecture without one."""
    import torch

    parts = _encoder_and_head(network)
    if parts is None:
        return None
    encoder, offset, head = parts
    _use_packed_attention(network)
    *layers, last = encoder.encoder.layer

    def pick(states: torch.Tensor, first_tokens: torch.Tensor) -> torch.Tensor:
        """The rows of ``states`` ([rows, width, hidden]) at each comment's first token: [comments, hidden]."""
        return states.reshape(-1, states.shape[-1]).index_select(0, first_tokens)

    class Packed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, input_ids: Any, position_ids: Any, sequence_ids: Any, first_tokens: Any) -> Any:
            same = sequence_ids[:, None, :, None] == sequence_ids[:, None, None, :]  # [rows, 1, width, width]
            # -10000 (BERT's own value) rather than float32's lowest: the same scores (exp underflows to 0 either
            # way), while the lowest overflowed in OpenVINO's AVX2 int8 kernels (label agreement 92% on a trained
            # model under --emulate-cpu avx2, 99.9% with this)
            mask = (~same).to(torch.float32) * -10000.0
            hidden = encoder.embeddings(input_ids=input_ids, position_ids=position_ids + offset)
            for layer in layers:
                hidden = layer(hidden, mask)
            # the last layer as transformers' own, for the first tokens only past its attention (their keys and
            # values are every token's): the head reads nothing else, and the rest of that layer is a twelfth of
            # bert-base's work, of which the first tokens are one in twelve
            context = last.attention.self(hidden, mask)[0]
            attended = last.attention.output(pick(context, first_tokens), pick(hidden, first_tokens))
            return head(last.output(last.intermediate(attended), attended))

    return Packed()


def _example(vocab: int, packed: bool) -> tuple[tuple[Any, ...], list[str], dict[str, dict[int, str]]]:
    """Inputs to trace with, their names and dynamic axes. The example has padding (and, packed, two comments in
    a row), so the graph keeps the mask: an all-ones example could trace a mask-free shortcut."""
    import torch

    ids = (torch.arange(16, dtype=torch.int64).reshape(2, 8) % max(1, vocab - 1)) + 1
    axes: dict[str, dict[int, str]] = {"input_ids": {0: "rows", 1: "width"}, "logits": {0: "comments"}}
    if not packed:
        mask = torch.ones(2, 8, dtype=torch.int64)
        mask[1, 5:] = 0
        axes["attention_mask"] = {0: "rows", 1: "width"}
        return (ids, mask), list(PADDED_INPUTS), axes
    positions = torch.tensor([[0, 1, 2, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 0, 0, 0]])
    sequences = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, -1, -1, -1]])
    first = torch.tensor([0, 3, 8])
    axes |= {"position_ids": {0: "rows", 1: "width"}, "sequence_ids": {0: "rows", 1: "width"}}
    axes["first_tokens"] = {0: "comments"}
    return (ids, positions, sequences, first), list(PACKED_INPUTS), axes


def export_network(model_dir: Path, out: Path, *, packed: bool, opset: int) -> Any:
    """Trace the version's network into ONNX at ``out``: packed where its architecture has a packed forward and
    ``packed`` is asked for, padded otherwise; returns the network's config. The caller quiets the exporter."""
    import torch

    from .backends.torch import load_network

    network = load_network(model_dir, "cpu", torch.float32)
    network.eval()
    module = (_packed_module(network) if packed else None) or network
    args, names, axes = _example(int(network.config.vocab_size), module is not network)
    try:
        with torch.no_grad():
            torch.onnx.export(
                module,
                args,
                str(out),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many kinds; all mean "this network does not export"
        raise ModelError(f"{model_dir}: ONNX export failed: {type(exc).__name__}: {exc}") from exc
    return network.config
