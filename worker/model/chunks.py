"""A batch of token ids as padded chunks: sorted by length and cut where padding plus a per-pass price is
lowest. Pure numpy: each backend turns the arrays into what it runs on."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Chunk", "Prepared", "pad_chunks", "plan_chunks"]


@dataclass(slots=True)
class Chunk:
    rows: list[int]  # indices into the batch
    input_ids: Any  # [rows, width] int64, as the backend staged it (numpy, or torch tensors)
    attention_mask: Any


@dataclass(slots=True)
class Prepared:
    size: int
    chunks: list[Chunk] = field(default_factory=list)
    tokens: int = 0  # real tokens
    padded_tokens: int = 0  # tokens fed to the model, padding included
    member: np.ndarray | None = None  # a version's n-gram member's probabilities, batch row order (runtime.py)

    def row_order(self) -> np.ndarray:
        """Batch row of each row of the concatenated chunks."""
        return np.fromiter(itertools.chain.from_iterable(c.rows for c in self.chunks), dtype=np.int64, count=self.size)


def _groups(lengths: Sequence[int], order: list[int]) -> tuple[list[int], list[int]]:
    """Runs of equal length in sorted order: (widths[g], ends[g] = rows in groups 0..g)."""
    widths: list[int] = []
    ends: list[int] = []
    for n, i in enumerate(order, 1):
        if widths and lengths[i] == widths[-1]:
            ends[-1] = n
        else:
            widths.append(lengths[i])
            ends.append(n)
    return widths, ends


def plan_chunks(lengths: Sequence[int], max_tokens: int, overhead_tokens: int = 32) -> list[list[int]]:
    """Split a batch into length-sorted chunks that minimise padded tokens plus a per-chunk overhead.

    Returns lists of indices into ``lengths``. Rows are sorted by length and cut into contiguous runs; the
    cut points minimise ``Σ rows × longest + overhead_tokens`` over the chunks (dynamic programming over
    the distinct lengths, so it is cheap), with no chunk over ``max_tokens`` padded tokens unless a single
    row is that long. ``overhead_tokens`` prices one more forward pass in tokens' worth of compute: small
    on CPU (Python overhead and small-matrix inefficiency), large on GPUs (kernel launches).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    if not order:
        return []
    widths, ends = _groups(lengths, order)
    starts = [0, *ends]

    def pieces(rows: int, width: int) -> int:
        per = max(1, max_tokens // max(1, width))
        return -(-rows // per)

    best = [0.0] + [float("inf")] * len(widths)
    cut = [0] * (len(widths) + 1)
    for j in range(1, len(widths) + 1):  # best plan for groups 0..j-1
        width = widths[j - 1]
        for i in range(j - 1, -1, -1):  # last chunk run: groups i..j-1
            rows = ends[j - 1] - starts[i]
            cost = best[i] + rows * width + pieces(rows, width) * overhead_tokens
            if cost < best[j]:
                best[j], cut[j] = cost, i
            if rows * width > 4 * max_tokens:  # longer runs only add padding and pieces
                break
    runs: list[tuple[int, int]] = []
    j = len(widths)
    while j > 0:
        runs.append((cut[j], j))
        j = cut[j]
    chunks: list[list[int]] = []
    for i, j in reversed(runs):
        run = order[starts[i] : ends[j - 1]]
        size = -(-len(run) // pieces(len(run), widths[j - 1]))
        chunks.extend(run[s : s + size] for s in range(0, len(run), size))
    return chunks


Stage = Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]


def pad_chunks(
    ids: Sequence[Sequence[int]], max_tokens: int, pad_id: int, overhead_tokens: int, stage: Stage | None = None
) -> Prepared:
    """Length-sorted, right-padded ``[rows, width]`` int64 arrays for ``ids`` (vectorised: no per-row Python);
    ``stage(input_ids, attention_mask)`` converts each chunk for the backend (e.g. pinned torch tensors)."""
    lengths = [len(x) for x in ids]
    prepared = Prepared(size=len(ids), tokens=sum(lengths))
    all_lengths = np.asarray(lengths, dtype=np.int64)
    for rows in plan_chunks(lengths, max_tokens, overhead_tokens):
        chunk_lengths = all_lengths[rows]
        width = int(chunk_lengths.max())
        # Row-major order of the mask's True cells is the order of the concatenated rows.
        mask = np.arange(width)[None, :] < chunk_lengths[:, None]
        array = np.full((len(rows), width), pad_id, dtype=np.int64)
        array[mask] = np.fromiter(
            itertools.chain.from_iterable(ids[i] for i in rows), dtype=np.int64, count=int(chunk_lengths.sum())
        )
        attention = mask.astype(np.int64)
        input_ids, attention_mask = stage(array, attention) if stage else (array, attention)
        prepared.chunks.append(Chunk(rows, input_ids, attention_mask))
        prepared.padded_tokens += array.size
    return prepared
