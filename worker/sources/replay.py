"""Replaying files: the comments of whole files in batches, each comment due at its own time (``--rate``: evenly
spaced; ``--speed X``: the files' own timing, X times faster), batches formed of what is due."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

from ..inputs import Entry
from ..streams.retry import sleep_or_stop

__all__ = ["due_times", "paced", "speed_to_fit"]


def due_times(records: Sequence[Entry], *, rate: float | None = None, speed: float | None = None) -> list[float]:
    """Seconds after the start at which each record is due. ``speed`` uses the broadcast offsets when the first
    timed record has one, else the send times (live chat); a record without that clock goes with the one
    before it."""
    if rate:
        return [i / rate for i in range(len(records))]
    if not speed:
        return [0.0] * len(records)
    first = next((r for r in records if r.offset_s is not None or r.time_s is not None), None)
    if first is None:
        return [0.0] * len(records)
    use_offset = first.offset_s is not None
    clocks = [r.offset_s if use_offset else r.time_s for r in records]
    base = next(c for c in clocks if c is not None)
    due, last = [], 0.0
    for clock in clocks:
        if clock is not None:
            last = max(last, (clock - base) / speed)  # a comment out of order goes at once, never back in time
        due.append(last)
    return due


def speed_to_fit(records: Sequence[Entry], span_s: float) -> float | None:
    """The ``speed`` at which :func:`due_times` replays ``records``' own timing in ``span_s`` seconds; None when
    they have no timing to compress (fewer than two distinct times)."""
    timed = [r.offset_s if r.offset_s is not None else r.time_s for r in records]
    clocks = [c for c in timed if c is not None]
    if len(clocks) < 2 or max(clocks) <= clocks[0] or span_s <= 0:
        return None
    return (max(clocks) - clocks[0]) / span_s


async def paced(
    records: Sequence[Entry], due: Sequence[float], max_batch: int = 500, stop: asyncio.Event | None = None
) -> AsyncIterator[list[Entry]]:
    """``records`` in batches: each batch holds the records due by the time it is sent (at most ``max_batch``);
    between batches, sleep until the next record is due. Ends early once ``stop`` is set."""
    started = time.monotonic()
    i = 0
    while i < len(records) and not (stop and stop.is_set()):
        delay = due[i] - (time.monotonic() - started)
        if delay > 0 and await sleep_or_stop(delay, stop):
            return
        now = time.monotonic() - started
        j = i + 1
        while j < len(records) and j - i < max_batch and due[j] <= now:
            j += 1
        yield list(records[i:j])
        i = j
