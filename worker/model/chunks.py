"""A batch of token ids as padded chunks: sorted by length and cut where padding plus a per-pass price is
lowest; for a backend whose graph takes packed rows (:mod:`.traced`), short comments first share rows of up to
``pack_tokens`` tokens. Pure numpy: each backend turns the arrays into what it runs on."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "PACKED_PASS_TOKENS",
    "PACK_TOKENS",
    "Chunk",
    "Packing",
    "Prepared",
    "pack_rows",
    "pad_chunks",
    "plan_chunks",
]


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

    def feed(self, names: Iterable[str]) -> dict[str, Any]:
        """A graph's inputs (:mod:`.traced`) by name, the ``names`` it takes: a padded graph's (``input_ids``,
        ``attention_mask``) or, for a packed chunk, a packed graph's (with its packing arrays)."""
        arrays = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.packing is not None:
            packing = self.packing
            arrays |= {"position_ids": packing.position_ids, "sequence_ids": packing.sequence_ids}
            arrays["first_tokens"] = packing.first_tokens
        return {name: arrays[name] for name in names}


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

# Rows of a packed graph: a pass costs about the same per token in rows of 16 to 128 tokens, 25% more in rows of
# 256 (attention grows with the square of the width); rows of 32 to 128 served 3 to 64 comments alike (ONNX
# Runtime int8, bert-base, an AMD EPYC (Zen 4): docs/PERFORMANCE.md)
PACK_TOKENS = 64

# The most tokens a packed pass takes, by default (a backend may say otherwise: ``pass_tokens``): packed passes of
# a few thousand tokens cost 10-15% more per token than passes of a few hundred (their activations outgrow the
# caches; ONNX Runtime int8, bert-base, on an AMD EPYC (Zen 4) and on the AMX Xeon; OpenVINO on AMX is faster
# with larger ones: docs/PERFORMANCE.md)
PACKED_PASS_TOKENS = 512


def pad_chunks(
    ids: Sequence[Sequence[int]],
    max_tokens: int,
    pad_id: int,
    overhead_tokens: int,
    stage: Stage | None = None,
    pack_tokens: int = 0,
    width_step: int = 1,
    pass_tokens: int = PACKED_PASS_TOKENS,
) -> Prepared:
    """Length-sorted, right-padded ``[rows, width]`` int64 arrays for ``ids`` (vectorised: no per-row Python);
    ``stage(input_ids, attention_mask)`` converts each chunk for the backend (e.g. pinned torch tensors). With
    ``pack_tokens``, comments are packed into rows of up to that many tokens first (:func:`pack_rows`), and
    passes hold at most ``pass_tokens``. Each width is a multiple of ``width_step`` (an engine that
    prepares its kernels per input shape sees few shapes)."""
    lengths = [len(x) for x in ids]
    prepared = Prepared(size=len(ids), tokens=sum(lengths))
    rows: list[list[int]] | None = None  # each row's comments, when packed; else a row is a comment
    row_lengths = lengths
    if pack_tokens > 0:
        rows = pack_rows(lengths, pack_tokens)
        row_lengths = [sum(lengths[i] for i in row) for row in rows]
        max_tokens = min(max_tokens, pass_tokens)
    all_row_lengths = np.asarray(row_lengths, dtype=np.int64)
    for chunk_rows in plan_chunks(row_lengths, max_tokens, overhead_tokens):
        members = [rows[r] for r in chunk_rows] if rows is not None else None
        comments = list(itertools.chain.from_iterable(members)) if members is not None else chunk_rows
        fills = all_row_lengths[chunk_rows]
        # Row-major order of the mask's True cells is the order of the concatenated comments.
        width = -(-int(fills.max()) // width_step) * width_step
        mask = np.arange(width)[None, :] < fills[:, None]
        array = np.full(mask.shape, pad_id, dtype=np.int64)
        array[mask] = np.fromiter(
            itertools.chain.from_iterable(ids[i] for i in comments), dtype=np.int64, count=int(fills.sum())
        )
        packing = (
            _packing(mask, fills, [len(m) for m in members], [lengths[i] for i in comments])
            if members is not None
            else None
        )
        attention = mask.astype(np.int64)
        input_ids, attention_mask = stage(array, attention) if stage else (array, attention)
        prepared.chunks.append(Chunk(comments, input_ids, attention_mask, packing))
        prepared.padded_tokens += array.size
    return prepared


def _packing(mask: np.ndarray, fills: np.ndarray, per_row: list[int], sizes: list[int]) -> Packing:
    """Where the comments of a packed chunk lie: ``mask`` its real tokens, ``fills`` each row's, ``per_row`` each
    row's comments, ``sizes`` each comment's tokens (in chunk order)."""
    counts, lengths = np.asarray(per_row, dtype=np.int64), np.asarray(sizes, dtype=np.int64)
    starts = np.cumsum(lengths) - lengths  # each comment's first token among the chunk's real tokens
    row_of = np.repeat(np.arange(len(counts)), counts)
    row_starts = np.cumsum(fills) - fills
    positions = np.zeros(mask.shape, dtype=np.int64)
    positions[mask] = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    sequences = np.full(mask.shape, -1, dtype=np.int64)
    sequences[mask] = np.repeat(np.arange(len(lengths)) - np.repeat(np.cumsum(counts) - counts, counts), lengths)
    first = row_of * mask.shape[1] + starts - row_starts[row_of]
    return Packing(positions, sequences, first)
