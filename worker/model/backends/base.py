"""The interface every inference backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ...errors import ModelError
from ...inputs import json_object
from ..chunks import Chunk

__all__ = ["Backend", "config_labels", "read_config", "read_labels"]


class Backend(Protocol):
    """A loaded network on a device, in a dtype. Called from one thread at a time (the model thread)."""

    name: str  # "torch", "onnxruntime", "openvino", "null"
    device: str  # "cpu" or "cuda"
    dtype_name: str  # "float32", "bfloat16", "int8"…
    num_labels: int
    id2label: dict[int, str]  # from the network's config
    chunk_overhead_tokens: int  # what one more forward pass costs, in tokens' worth of compute
    pack_tokens: int  # comments share rows of up to this many tokens (a packed graph, :mod:`..traced`); 0: not
    width_step: int  # each pass's width is a multiple of this (1: any width)
    pass_tokens: int  # the most tokens a packed pass holds (with pack_tokens)
    description: str  # how it runs, for the log (e.g. "lean BERT forward")

    def stage(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[Any, Any]:
        """Host-side inputs for :meth:`probabilities`, made on the tokenizer thread (e.g. pinned tensors)."""
        ...

    def probabilities(self, chunks: Sequence[Chunk], multi_label: bool) -> np.ndarray:
        """float32 ``[rows, labels]`` for the chunks' rows in chunk order: sigmoid (multi-label) or softmax."""
        ...


def config_labels(config: dict[str, Any]) -> list[str]:
    """The label names of a Hugging Face ``config.json``, by transformers' own rule: ``num_labels`` outputs (else
    as many as ``id2label`` names, else 2), named by ``id2label`` where it names that many, else LABEL_<i>."""
    named = {int(k): str(v) for k, v in (config.get("id2label") or {}).items()}
    given = config.get("num_labels")
    count = int(given) if given is not None else (len(named) or 2)
    if len(named) != count:  # transformers: a num_labels that disagrees with id2label wins, the names go
        named = {}
    return [named.get(i, f"LABEL_{i}") for i in range(count)]


def read_config(model_dir: Path) -> dict[str, Any]:
    """A model directory's ``config.json``."""
    return json_object(model_dir / "config.json", ModelError)


def read_labels(model_dir: Path) -> tuple[int, dict[int, str]]:
    """(number of outputs, id → label name) from a model directory's ``config.json``, for backends that do not
    load the network through transformers."""
    labels = config_labels(read_config(model_dir))
    return len(labels), dict(enumerate(labels))
