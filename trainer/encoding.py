"""From text to padded id tensors, exactly as the worker does it at serving time.

:func:`encode_texts` mirrors :meth:`worker.model.LoadedModel.encode`: the version's
:class:`worker.text.Preprocessor`, then the fast tokenizer's backend with no padding, truncation to
``max_length`` and special tokens. ``tests/integration/test_train_publish.py`` checks that both give equal ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from worker.errors import ModelError
from worker.modelinit import build_char_tokenizer
from worker.text import Preprocessor

__all__ = ["char_tokenizer", "collate", "encode_texts", "length_batches", "serving_backend"]


def serving_backend(tokenizer: Any, max_length: int) -> Any:
    """A copy of ``tokenizer``'s backend (``tokenizers.Tokenizer``) configured like the worker's."""
    from tokenizers import Tokenizer

    if not getattr(tokenizer, "is_fast", False):
        raise ModelError("a fast (tokenizers) tokenizer is required")
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.enable_truncation(max_length)
    return backend


def encode_texts(backend: Any, preprocess: Preprocessor, texts: Sequence[str]) -> list[list[int]]:
    """Preprocess and tokenise (truncated, special tokens added): the ids the model is trained on."""
    encodings = backend.encode_batch([preprocess(t) for t in texts], add_special_tokens=True)
    return [e.ids for e in encodings]


def char_tokenizer(texts: Iterable[str], out_dir: Path, preprocess: Preprocessor,
                   vocab_size: int | None = None, min_count: int = 1) -> int:
    """A character vocabulary from ``texts``: :func:`worker.modelinit.build_char_tokenizer`, the one builder."""
    return build_char_tokenizer(list(texts), out_dir, vocab_size=vocab_size, min_count=min_count,
                                preprocess=preprocess)


def length_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None = None,
                   bucket_batches: int = 50) -> list[np.ndarray]:
    """Row indices in batches of similar length (little padding). With ``rng``: rows are shuffled, sorted
    by length within buckets of ``bucket_batches`` batches, and the batch order is shuffled; without:
    sorted by length (for inference)."""
    lengths_arr = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths_arr, kind="stable")
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    order = rng.permutation(len(lengths_arr))
    bucket = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), bucket):
        part = order[start : start + bucket]
        part = part[np.argsort(lengths_arr[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(ids: Sequence[Sequence[int]], rows: Iterable[int], pad_id: int) -> tuple[Any, Any]:
    """(input_ids, attention_mask) int64 tensors for ``rows`` of ``ids``, right-padded."""
    import torch

    selected = [ids[int(i)] for i in rows]
    width = max(len(x) for x in selected)
    array = np.full((len(selected), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(selected), width), dtype=np.int64)
    for r, row in enumerate(selected):
        array[r, : len(row)] = row
        mask[r, : len(row)] = 1
    return torch.from_numpy(array), torch.from_numpy(mask)
