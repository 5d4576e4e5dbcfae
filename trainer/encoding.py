"""Batches for training and validation: length-bucketed row batches and right-padded id tensors.
Token ids come from :mod:`worker.model.tokenizer`, exactly as the worker encodes at serving time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["collate", "length_batches"]


def length_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None = None, bucket_batches: int = 50
) -> list[np.ndarray]:
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
