"""The one back-pressure owner: the comments this worker holds (read and not yet published), and when its
readers may take more.

Readers :meth:`~Flow.hold` what they read, the score stage reports each batch it :meth:`~Flow.started` (admit
reports the comments it sets aside the same way), the publisher :meth:`~Flow.release`\\ s what it published.
From those counts alone the flow decides:

- **room**: at most ``limit`` (``--max-inflight``) comments in hand; reclaiming and re-reading this consumer's own
  pending entries wait for room only;
- **turn**: new entries (XREADGROUP ``>``) are taken only while fewer than ``ahead`` (one batch,
  ``--max-batch-size``) wait for the model. A worker takes new entries only when it can start on them soon: a
  backlog waits in Redis for whichever worker of the group frees up first, while a batch is always read ahead so
  that a free model never waits for a read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from .health import Health

__all__ = ["Flow"]

E = TypeVar("E", bound=tuple[str, object])


class Flow:
    def __init__(self, limit: int, ahead: int, health: Health) -> None:
        if limit < 1 or ahead < 1:
            raise ValueError("limit and ahead must be >= 1")
        self.limit, self.ahead = limit, ahead
        self._health = health
        self._held: set[str] = set()
        self._waiting = 0  # held, and neither started by the model nor set aside
        self._changed = asyncio.Event()
        self._stopped = False

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._held

    @property
    def waiting(self) -> int:
        """Comments in hand that wait for the model (read, admitted or batched, not started yet)."""
        return self._waiting

    # --- reports ----------------------------------------------------------------------------------
    def hold(self, entries: Sequence[E]) -> list[E]:
        """Take ``entries`` (id first) into the worker's hands; returns those not held already, in order."""
        fresh = [e for e in entries if e[0] not in self._held]
        if fresh:
            self._held.update(e[0] for e in fresh)
            self._waiting += len(fresh)
            self._health.held(len(self._held))
        return fresh

    def started(self, count: int) -> None:
        """``count`` comments stopped waiting for the model: a batch went to it, or admit set them aside."""
        self._waiting -= count
        self._health.moved()
        self._changed.set()

    def release(self, entry_ids: Iterable[str]) -> None:
        """Published (or dead-lettered): out of the worker's hands."""
        self._held.difference_update(entry_ids)
        self._health.held(len(self._held))
        self._health.moved()
        self._changed.set()

    def stop(self) -> None:
        """No more reading: whoever waits for room or a turn is answered 0 at once."""
        self._stopped = True
        self._changed.set()

    # --- waits ------------------------------------------------------------------------------------
    async def room(self) -> int:
        """Until fewer than ``limit`` comments are in hand; how many more may be taken (0 once stopped)."""
        return await self._until(lambda: len(self._held) < self.limit)

    async def turn(self) -> int:
        """Until new entries may be read (room, and fewer than ``ahead`` waiting for the model); the room
        (0 once stopped)."""
        return await self._until(lambda: len(self._held) < self.limit and self._waiting < self.ahead)

    async def _until(self, ready: Callable[[], bool]) -> int:
        while not (self._stopped or ready()):
            self._changed.clear()
            await self._changed.wait()
        return 0 if self._stopped else self.limit - len(self._held)
