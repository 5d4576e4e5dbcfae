"""A stand-in backend for measuring the host path: fixed scores, no network, no time. ``--backend null`` runs
the real worker (Redis, parsing, tokenising, batching, publishing) around it, so ``livetopic bench --preset
null`` measures what one worker process moves when the model costs nothing (e.g. behind a fast GPU). Never a
default: nothing picks it unless asked for by name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..chunks import PACKED_PASS_TOKENS, Chunk
from .base import read_labels

__all__ = ["NullBackend"]


class NullBackend:
    """See :class:`~worker.model.backends.base.Backend`: every comment gets the same scores."""

    def __init__(self, model_dir: Path) -> None:
        self.name = "null"
        self.device, self.dtype_name = "cpu", "float32"
        self.num_labels, self.id2label = read_labels(model_dir)
        # spread over (0, 1) so that some labels are over a 0.5 threshold and some not: results look like real ones
        self.scores = np.linspace(0.9, 0.1, self.num_labels, dtype=np.float32)
        self.chunk_overhead_tokens = 1 << 20  # one chunk per batch: padding costs nothing here
        self.pack_tokens = 0
        self.width_step = 1
        self.pass_tokens = PACKED_PASS_TOKENS  # unused: not packed
        self.description = "null stand-in: fixed scores, no model (host-path measurement only)"

    def stage(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[Any, Any]:
        return input_ids, attention_mask

    def probabilities(self, chunks: Sequence[Chunk], multi_label: bool) -> np.ndarray:
        rows = sum(len(c.rows) for c in chunks)
        return np.broadcast_to(self.scores, (rows, self.num_labels)).copy()
