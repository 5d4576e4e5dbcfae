"""Untrained model versions: a character-level vocabulary built from texts and a randomly initialised
sequence classifier of a known shape. Used by ``livetopic model init``, tests, benchmarks and the
trainer's from-scratch start."""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import ModelError
from .repository import Manifest, PreprocessingSpec, publish_version
from .text import Preprocessor

__all__ = ["ARCHS", "PRESETS", "Shape", "build_char_tokenizer", "build_config", "init_version"]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
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
    "small": Shape(layers=4, hidden=256, heads=4, intermediate=1024, positions=128, vocab=None),
    "bert-base-chinese": Shape(layers=12, hidden=768, heads=12, intermediate=3072, positions=512, vocab=21128),
}


def build_char_tokenizer(texts: Iterable[str], out_dir: Path, *, vocab_size: int | None = None,
                         min_count: int = 1, preprocess: Preprocessor | None = None) -> int:
    """Write a BERT WordPiece tokenizer whose vocabulary is the characters of ``texts`` (each also as a
    ``##`` continuation, so Latin words split into characters). Padded with ``[unusedN]`` entries up to
    ``vocab_size`` when given. Returns the vocabulary size.

    The vocabulary is passed as a mapping: transformers 5 ignores ``vocab_file=`` here and would save only
    the special tokens (every character [UNK]); the size on disk is checked for that reason.
    """
    from transformers import BertTokenizerFast  # type: ignore[attr-defined]

    counts: collections.Counter[str] = collections.Counter()
    for text in texts:
        counts.update((preprocess(text) if preprocess else text).lower())
    vocab: list[str] = list(SPECIAL_TOKENS)
    seen = set(vocab)
    limit = vocab_size or 10**9
    for ch in (c for c, n in counts.most_common() if n >= min_count and not c.isspace()):
        for token in (ch, "##" + ch):
            if token not in seen and len(vocab) < limit:
                vocab.append(token)
                seen.add(token)
    while vocab_size and len(vocab) < vocab_size:
        vocab.append(f"[unused{len(vocab)}]")
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True,
                                  tokenize_chinese_chars=True)
    tokenizer.save_pretrained(str(out_dir))
    saved = len(json.loads((out_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"])
    if saved != len(vocab):
        raise ModelError(f"{out_dir}: saved a vocabulary of {saved} tokens instead of {len(vocab)}")
    return len(vocab)


def build_config(preset: str, arch: Arch, vocab_size: int, labels: list[str], multi_label: bool,
                 max_length: int = 64) -> Any:
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
        return BertConfig(num_hidden_layers=shape.layers, hidden_size=shape.hidden,
                          num_attention_heads=shape.heads, intermediate_size=shape.intermediate,
                          max_position_embeddings=positions, **common)
    if arch == "distilbert":
        return DistilBertConfig(n_layers=shape.layers, dim=shape.hidden, n_heads=shape.heads,
                                hidden_dim=shape.intermediate, max_position_embeddings=positions, **common)
    return RobertaConfig(num_hidden_layers=shape.layers, hidden_size=shape.hidden,
                         num_attention_heads=shape.heads, intermediate_size=shape.intermediate,
                         max_position_embeddings=positions + 2, **common)


def init_version(repo: Path, *, preset: str, labels: list[str], texts: Iterable[str], arch: Arch = "bert",
                 multi_label: bool = True, name: str = "livetopic", max_length: int = 64,
                 preprocessing: PreprocessingSpec | None = None, seed: int = 0,
                 dtype_agreement: dict[str, float] | None = None) -> int:
    """Publish an untrained version (random weights) into ``repo``; returns its number. ``dtype_agreement``
    goes into the manifest as given (tests use it to exercise ``dtype=auto``)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    spec = preprocessing or PreprocessingSpec()
    texts = list(texts)

    def write(out: Path) -> None:
        vocab = build_char_tokenizer(texts, out, vocab_size=PRESETS[preset].vocab, preprocess=spec.build())
        config = build_config(preset, arch, vocab, labels, multi_label, max_length)
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(config)
        model.save_pretrained(str(out), safe_serialization=True)

    manifest = Manifest(
        name=name, labels=labels, preprocessing=spec, max_length=max_length,
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
        training_args={"preset": preset, "arch": arch, "untrained": True, "seed": seed},
        dtype_agreement=dtype_agreement or {},
    )
    return publish_version(repo, write, manifest)
