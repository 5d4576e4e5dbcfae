"""What the backends that run an exported graph on the CPU (ONNX Runtime, OpenVINO) share: the graph's inputs
checked (padded or packed, :mod:`..traced`), staging, one pass per chunk and the scores (sigmoid or softmax) of
the stacked logits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError
from ..chunks import PACK_TOKENS, PACKED_PASS_TOKENS, Chunk
from ..traced import PACKED_INPUTS, PADDED_INPUTS
from .base import read_labels

__all__ = ["GraphBackend", "scores", "sigmoid", "softmax"]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^-x)`` without overflow for any x."""
    return np.exp(-np.logaddexp(0.0, -logits)).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


def scores(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """float32 probabilities of ``[rows, labels]`` logits: sigmoid (multi-label) or softmax."""
    return sigmoid(logits) if multi_label else softmax(logits)


class GraphBackend:
    """A :class:`~worker.model.backends.base.Backend` on the CPU over a graph whose inputs are some of
    ``input_ids`` and ``attention_mask`` and whose first output is the logits. A subclass loads its engine, then
    calls :meth:`_check_inputs` with the graph's input names and implements :meth:`_logits`."""

    # A pass costs little besides its arithmetic (no per-operator Python): cut chunks for padding mostly.
    chunk_overhead_tokens = 16
    pack_tokens = 0  # PACK_TOKENS for a packed graph
    width_step = 1
    pass_tokens = PACKED_PASS_TOKENS

    def __init__(self, name: str, model_dir: Path, dtype_name: str) -> None:
        self.name = name
        self.device, self.dtype_name = "cpu", dtype_name
        self.num_labels, self.id2label = read_labels(model_dir)
        self._inputs: list[str] = []

    def _check_inputs(self, names: list[str], source: Path) -> None:
        packed = set(names) == set(PACKED_INPUTS)
        unknown = set(names) - set(PADDED_INPUTS)
        if unknown and not packed:
            raise ModelError(f"{source}: unexpected graph inputs {sorted(unknown)}")
        self._inputs = names
        self.pack_tokens = PACK_TOKENS if packed else 0

    def _logits(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """One forward pass of the graph on ``feed`` (the graph's inputs only)."""
        raise NotImplementedError

    def stage(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[Any, Any]:
        return np.ascontiguousarray(input_ids), np.ascontiguousarray(attention_mask)

    def probabilities(self, chunks: Sequence[Chunk], multi_label: bool) -> np.ndarray:
        if not chunks:
            return np.empty((0, self.num_labels), dtype=np.float32)
        logits = []
        for chunk in chunks:
            if self.pack_tokens and chunk.packing is None:
                raise ModelError("a packed graph was given chunks of one comment per row")
            logits.append(self._logits(chunk.feed(self._inputs)))
        return scores(np.concatenate(logits).astype(np.float32, copy=False), multi_label)
