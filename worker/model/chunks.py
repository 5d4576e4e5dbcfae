"""A batch of token ids as padded chunks: sorted by length and cut where padding plus a per-pass price is
lowest; for a backend whose graph takes packed rows (:mod:`.traced`), short comments first share rows of up to
``pack_tokens`` tokens. Pure numpy: each backend turns the arrays into what it runs on."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Chunk", "Packing", "Prepared", "pack_rows", "pad_chunks", "plan_chunks"]


@dataclass(frozen=True, slots=True)
class Packing:
    """Where each comment of a packed chunk lies (the graph's inputs besides ``input_ids``)."""

    position_ids: np.ndarray  # [rows, width] int64: each token's place in its comment
    sequence_ids: np.ndarray  # [rows, width] int64: which comment of its row each token is of; -1: padding
    first_tokens: np.ndarray  # [comments] int64: flat index of each comment's first token, in ``Chunk.rows`` order


@dataclass(slots=True)
class Chunk:
    rows: list[int]  # indices into the batch (of a packed chunk: its comments, in the order of its logits)
    input_ids: Any  # [rows, width] int64, as the backend staged it (numpy, or torch tensors)
    attention_mask: Any
    packing: Packing | None = None  # several comments in a row


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


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Comments (indices into ``lengths``) grouped into rows of at most ``capacity`` tokens, longest first, each
    into the fullest row it fits (best fit decreasing); a comment of ``capacity`` tokens or more has a row alone."""
    rows: list[list[int]] = []
    by_room: dict[int, list[int]] = {}  # tokens a row still has room for → those rows
    for i in sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True):
        n = lengths[i]
        room = next((r for r in range(n, capacity) if by_room.get(r)), capacity)
        if n >= capacity or room == capacity:
            row, room = len(rows), capacity
            rows.append([])
        else:
            row = by_room[room].pop()
        rows[row].append(i)
        if room - n > 0:
            by_room.setdefault(room - n, []).append(row)
    return rows


Stage = Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]

# The most tokens a packed pass takes: packed passes of a few thousand tokens cost 10-15% more per token than
# passes of a few hundred (their activations outgrow the caches; measured on an AMD EPYC (Zen 4), ONNX Runtime
# int8, bert-base: docs/PERFORMANCE.md)
PACKED_PASS_TOKENS = 512


def pad_chunks(
    ids: Sequence[Sequence[int]],
    max_tokens: int,
    pad_id: int,
    overhead_tokens: int,
    stage: Stage | None = None,
    pack_tokens: int = 0,
) -> Prepared:
    """Length-sorted, right-padded ``[rows, width]`` int64 arrays for ``ids`` (vectorised: no per-row Python);
    ``stage(input_ids, attention_mask)`` converts each chunk for the backend (e.g. pinned torch tensors). With
    ``pack_tokens``, comments are packed into rows of up to that many tokens first (:func:`pack_rows`)."""
    if pack_tokens > 0:
        return _packed_chunks(ids, max_tokens, pad_id, overhead_tokens, stage, pack_tokens)
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


def _packed_chunks(
    ids: Sequence[Sequence[int]], max_tokens: int, pad_id: int, overhead_tokens: int, stage: Stage | None, pack: int
) -> Prepared:
    lengths = [len(x) for x in ids]
    prepared = Prepared(size=len(ids), tokens=sum(lengths))
    rows = pack_rows(lengths, pack)
    row_lengths = [sum(lengths[i] for i in row) for row in rows]
    for chunk_rows in plan_chunks(row_lengths, min(max_tokens, PACKED_PASS_TOKENS), overhead_tokens):
        members = [rows[r] for r in chunk_rows]
        comments = list(itertools.chain.from_iterable(members))
        sizes = np.asarray([lengths[i] for i in comments], dtype=np.int64)
        fills = np.asarray([row_lengths[r] for r in chunk_rows], dtype=np.int64)
        per_row = np.asarray([len(m) for m in members], dtype=np.int64)
        width = int(fills.max())
        mask = np.arange(width)[None, :] < fills[:, None]  # row-major True cells: the comments' tokens in order
        starts = np.cumsum(sizes) - sizes  # each comment's first token among the chunk's real tokens
        row_of = np.repeat(np.arange(len(members)), per_row)
        row_starts = np.cumsum(fills) - fills
        array = np.full(mask.shape, pad_id, dtype=np.int64)
        array[mask] = np.fromiter(
            itertools.chain.from_iterable(ids[i] for i in comments), dtype=np.int64, count=int(sizes.sum())
        )
        positions = np.zeros(mask.shape, dtype=np.int64)
        positions[mask] = np.arange(int(sizes.sum())) - np.repeat(starts, sizes)
        sequences = np.full(mask.shape, -1, dtype=np.int64)
        sequences[mask] = np.repeat(np.arange(len(comments)) - np.repeat(np.cumsum(per_row) - per_row, per_row), sizes)
        first = row_of * width + starts - row_starts[row_of]
        input_ids, attention_mask = stage(array, mask.astype(np.int64)) if stage else (array, mask.astype(np.int64))
        prepared.chunks.append(Chunk(comments, input_ids, attention_mask, Packing(positions, sequences, first)))
        prepared.padded_tokens += array.size
    return prepared
