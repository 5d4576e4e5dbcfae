"""Model shapes: the presets that ``livetopic model init``, the trainer (from scratch) and ``livetopic bench``
build, and the transformers config of a preset for an architecture."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ARCHS", "PRESETS", "Arch", "Shape", "build_config"]

Arch = Literal["bert", "distilbert", "roberta"]
ARCHS: tuple[str, ...] = ("bert", "distilbert", "roberta")


@dataclass(frozen=True, slots=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    intermediate: int
    positions: int
    vocab: int | None  # None: as many entries as the texts need


PRESETS: dict[str, Shape] = {
    "tiny": Shape(layers=2, hidden=64, heads=2, intermediate=128, positions=128, vocab=None),
    # narrow and deep: on the chat data it learns more per CPU-minute than "small", and more per epoch than
    # 2- or 4-layer models of similar cost
    "mini": Shape(layers=6, hidden=128, heads=4, intermediate=512, positions=128, vocab=None),
    "small": Shape(layers=4, hidden=256, heads=4, intermediate=1024, positions=128, vocab=None),
    "bert-base-chinese": Shape(layers=12, hidden=768, heads=12, intermediate=3072, positions=512, vocab=21128),
}

# What each architecture's config calls a shape's layers, hidden size, attention heads and intermediate size.
_BERT_FIELDS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
_SHAPE_FIELDS: dict[str, tuple[str, ...]] = {
    "bert": _BERT_FIELDS,
    "distilbert": ("n_layers", "dim", "n_heads", "hidden_dim"),
    "roberta": _BERT_FIELDS,
}


def build_config(
    preset: str, arch: Arch, vocab_size: int, labels: list[str], multi_label: bool, max_length: int = 64
) -> Any:
    """A transformers config for ``preset``/``arch`` with the given labels."""
    from transformers import BertConfig, DistilBertConfig, RobertaConfig

    shape = PRESETS[preset]
    common: dict[str, Any] = {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
        "problem_type": "multi_label_classification" if multi_label else "single_label_classification",
        "vocab_size": vocab_size,
        "pad_token_id": 0,
    }
    positions = max(shape.positions, max_length + 2)
    sizes = dict(zip(_SHAPE_FIELDS[arch], (shape.layers, shape.hidden, shape.heads, shape.intermediate), strict=True))
    if arch == "roberta":
        positions += 2  # RoBERTa's position ids start after its padding index
    config = {"bert": BertConfig, "distilbert": DistilBertConfig, "roberta": RobertaConfig}[arch]
    return config(max_position_embeddings=positions, **sizes, **common)
