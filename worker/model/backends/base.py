"""The interface every inference backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..chunks import Chunk

__all__ = ["Backend"]


class Backend(Protocol):
    """A loaded network on a device, in a dtype. Called from one thread at a time (the model thread)."""

    device: str  # "cpu" or "cuda"
    dtype_name: str  # "float32", "bfloat16", "int8"…
    num_labels: int
    id2label: dict[int, str]  # from the network's config
    chunk_overhead_tokens: int  # what one more forward pass costs, in tokens' worth of compute
    description: str  # how it runs, for the log (e.g. "lean BERT forward")

    def stage(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[Any, Any]:
        """Host-side inputs for :meth:`probabilities`, made on the tokenizer thread (e.g. pinned tensors)."""
        ...

    def probabilities(self, chunks: Sequence[Chunk], multi_label: bool) -> np.ndarray:
        """float32 ``[rows, labels]`` for the chunks' rows in chunk order: sigmoid (multi-label) or softmax."""
        ...
