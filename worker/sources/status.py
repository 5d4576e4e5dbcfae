"""The live status line of a producer that keeps running (``push --follow``, ``push -``, ``scrape``):
messages/s, pushed, retractions, skipped, duplicates, unreadable lines, reconnects; redrawn in place on a
terminal, a line every 10 s elsewhere."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

from ..inputs.records import summary_of_skipped, summary_of_unreadable

__all__ = ["Status"]


class Status:
    def __init__(self, label: str, out: TextIO | None = None, enabled: bool = True) -> None:
        self.label, self.out, self.enabled = label, out or sys.stderr, enabled
        self.pushed = 0
        self.retractions = 0  # deletions and bans pushed (entries with kind=retract)
        self.duplicates = 0
        self.reconnects = 0
        self.unreadable = 0  # lines skipped because they cannot be read (each named in a WARNING)
        self.skipped: Counter[str] = Counter()
        self._tty = self.out.isatty()
        self._interval_s = 1.0 if self._tty else 10.0
        self._started = self._last_t = time.monotonic()
        self._last_pushed = 0
        self._drawn = False

    def line(self, rate: float) -> str:
        return (
            f"{self.label}: {rate:.1f} msg/s, pushed {self.pushed}, retractions {self.retractions}, "
            f"skipped {sum(self.skipped.values())}, "
            f"duplicates {self.duplicates}, unreadable {self.unreadable}, reconnects {self.reconnects}"
        )

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last_t < self._interval_s):
            return
        rate = (self.pushed - self._last_pushed) / max(now - self._last_t, 1e-9)
        self._last_t, self._last_pushed = now, self.pushed
        if self._tty:
            self.out.write("\r\033[K" + self.line(rate))
            self._drawn = True
        else:
            self.out.write(self.line(rate) + "\n")
        self.out.flush()

    def summary(self) -> str:
        elapsed = time.monotonic() - self._started
        text = (
            f"pushed {self.pushed} comments and {self.retractions} retractions in {elapsed:.1f}s "
            f"({self.duplicates} duplicates skipped, {self.reconnects} reconnects)"
        )
        return "; ".join(
            part for part in (text, summary_of_skipped(self.skipped), summary_of_unreadable(self.unreadable)) if part
        )

    def close(self) -> None:
        if self._drawn:
            self.out.write("\n")
        self.out.write(self.summary() + "\n")
        self.out.flush()
