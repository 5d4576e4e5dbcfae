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
    if arch == "bert":
        return BertConfig(
            num_hidden_layers=shape.layers,
            hidden_size=shape.hidden,
            num_attention_heads=shape.heads,
            intermediate_size=shape.intermediate,
            max_position_embeddings=positions,
            **common,
        )
    if arch == "distilbert":
        return DistilBertConfig(
            n_layers=shape.layers,
            dim=shape.hidden,
            n_heads=shape.heads,
            hidden_dim=shape.intermediate,
            max_position_embeddings=positions,
            **common,
        )
    return RobertaConfig(
        num_hidden_layers=shape.layers,
        hidden_size=shape.hidden,
        num_attention_heads=shape.heads,
        intermediate_size=shape.intermediate,
        max_position_embeddings=positions + 2,
        **common,
    )
