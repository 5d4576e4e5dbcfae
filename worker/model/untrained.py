"""Untrained model versions: a character-level vocabulary built from texts and a randomly initialised
sequence classifier of a preset shape. Used by ``livetopic model init``, tests, benchmarks and the
trainer's from-scratch start."""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable
from pathlib import Path

from ..errors import ModelError
from ..text import Preprocessor
from .export import publish_graphs
from .presets import PRESETS, Arch, build_config
from .repository import Manifest, PreprocessingSpec, publish_version

__all__ = ["build_char_tokenizer", "init_version"]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_char_tokenizer(
    texts: Iterable[str],
    out_dir: Path,
    *,
    vocab_size: int | None = None,
    min_count: int = 1,
    preprocess: Preprocessor | None = None,
) -> int:
    """Write a BERT WordPiece tokenizer whose vocabulary is the characters of ``texts`` (each also as a
    ``##`` continuation, so Latin words split into characters). Padded with ``[unusedN]`` entries up to
    ``vocab_size`` when given. Letter case is kept where ``preprocess`` keeps it (its ``lowercase`` off), so
    the tokenizer does not undo that choice; without a preprocessor it lowercases. Returns the vocabulary size.

    The vocabulary is passed as a mapping: transformers 5 ignores ``vocab_file=`` here and would save only
    the special tokens (every character [UNK]); the size on disk is checked for that reason.
    """
    from transformers import BertTokenizerFast  # type: ignore[attr-defined]

    lowercase = preprocess.lowercase if preprocess else True
    counts: collections.Counter[str] = collections.Counter()
    for text in texts:
        text = preprocess(text) if preprocess else text
        counts.update(text.lower() if lowercase else text)
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
    tokenizer = BertTokenizerFast(
        vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=lowercase, tokenize_chinese_chars=True
    )
    tokenizer.save_pretrained(str(out_dir))
    saved = len(json.loads((out_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"])
    if saved != len(vocab):
        raise ModelError(f"{out_dir}: saved a vocabulary of {saved} tokens instead of {len(vocab)}")
    return len(vocab)


def init_version(
    repo: Path,
    *,
    preset: str,
    labels: list[str],
    texts: Iterable[str],
    arch: Arch = "bert",
    multi_label: bool = True,
    name: str = "livetopic",
    max_length: int = 64,
    preprocessing: PreprocessingSpec | None = None,
    seed: int = 0,
    dtype_agreement: dict[str, float] | None = None,
    labels_change_intended: bool = False,
    graphs: bool = False,
) -> int:
    """Publish an untrained version (random weights) into ``repo``; returns its number. ``dtype_agreement``
    goes into the manifest as given (tests use it to exercise ``dtype=auto``); ``labels_change_intended`` lets
    running workers swap it in though its labels differ from theirs; ``graphs``: its ONNX graphs are made and
    published with it (``model init``; tests leave them to the workers)."""
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
        if graphs:
            publish_graphs(out)

    manifest = Manifest(
        name=name,
        labels=labels,
        preprocessing=spec,
        max_length=max_length,
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
        training_args={"preset": preset, "arch": arch, "untrained": True, "seed": seed},
        dtype_agreement=dtype_agreement or {},
        labels_change_intended=labels_change_intended,
    )
    return publish_version(repo, write, manifest)
