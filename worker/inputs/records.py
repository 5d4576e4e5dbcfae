"""What the readers produce: a :class:`Record` (one comment, as ``push`` sends it), a :class:`Retraction` (a
moderator removed earlier comments: a deletion or a ban, pushed as an entry the worker turns into retractions),
a :class:`Skipped` item (a chat item without viewer text) or an :class:`Unreadable` line (skipped, with a
WARNING naming it), and the small conversions every shape shares (times, emoji, numbers)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "Converted",
    "Entry",
    "Reading",
    "Record",
    "Retraction",
    "Skipped",
    "Unreadable",
    "emoji_or_shortcut",
    "iso_utc",
    "not_utf8",
    "number",
    "parse_offset",
    "summary_of_skipped",
    "summary_of_unreadable",
    "warn_unreadable",
]

log = logging.getLogger(__name__)
WARN_EACH = 100  # a WARNING for each of the first unreadable lines of a run, then for every WARN_EACH-th


@dataclass(slots=True)
class Record:
    """One comment: the input-stream fields, its offset into the broadcast and its wall-clock time."""

    fields: dict[str, str]
    offset_s: float | None = None  # position in the broadcast (replays, chat logs), for --speed
    time_s: float | None = None  # when it was sent (seconds since the epoch), for --speed on live chat


@dataclass(slots=True)
class Retraction:
    """A moderator's removal of earlier comments, as an input-stream entry without ``text``: ``kind=retract``,
    ``action`` (``delete``, ``ban``, ``timeout``), ``target_id`` (a deletion: the message's ``id``) or
    ``target_author_id`` (a ban or timeout: every earlier comment of that ``author_id``), ``id`` (its own, for
    the de-duplication window), and ``channel``/``ts`` where known (see docs/INPUTS.md)."""

    fields: dict[str, str]
    offset_s: float | None = None
    time_s: float | None = None


Entry = Record | Retraction  # what a producer pushes, in order


@dataclass(frozen=True, slots=True)
class Skipped:
    """A chat item that carries no viewer text (a membership, a sticker, a deleted message…), by kind."""

    kind: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A line or row that cannot be read (not UTF-8, invalid JSON or CSV, not a chat shape): skipped, never
    pushed, and never a reason to stop reading the rest. ``where``: the file (or ``<stdin>``) and line."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


Converted = Record | Retraction | Skipped | Unreadable


def not_utf8(where: str, byte: int) -> Unreadable:
    """The line at ``where``, which holds ``byte``, a byte that UTF-8 text cannot hold there."""
    return Unreadable(where, f"not UTF-8 text (byte 0x{byte:02x})")


def warn_unreadable(item: Unreadable, seen: int) -> None:
    """The WARNING for the ``seen``-th unreadable line of a run (each of the first :data:`WARN_EACH`, then one
    in :data:`WARN_EACH`, so that a file of garbage cannot flood the log)."""
    if seen <= WARN_EACH or seen % WARN_EACH == 0:
        log.warning("skipped unreadable line %s (%d unreadable so far)", item, seen)


@dataclass(slots=True)
class Reading:
    """What the files held: the entries in order (comments and retractions), the items skipped, counted by
    kind, the unreadable lines (each with a WARNING), and the files that held nothing at all."""

    entries: list[Entry] = field(default_factory=list)
    empty: list[Path] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    unreadable: int = 0
    comments: int = 0

    @property
    def records(self) -> list[Record]:
        """The comments alone (what training, benchmarks and demos read)."""
        return [entry for entry in self.entries if isinstance(entry, Record)]

    @property
    def retractions(self) -> int:
        return len(self.entries) - self.comments

    def add(self, items: Iterable[Converted]) -> None:
        for item in items:
            if isinstance(item, Skipped):
                self.skipped[item.kind] += 1
            elif isinstance(item, Unreadable):
                self.unreadable += 1
                warn_unreadable(item, self.unreadable)
            else:
                self.entries.append(item)
                self.comments += isinstance(item, Record)


def summary_of_skipped(skipped: Counter[str]) -> str:
    """'skipped 3 items without text (membership 2, deleted 1)', or '' when nothing was skipped."""
    total = sum(skipped.values())
    if not total:
        return ""
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"skipped {total} items without text ({kinds})"


def summary_of_unreadable(count: int) -> str:
    """'skipped 2 unreadable lines (see the WARNINGs)', or '' when there were none."""
    if not count:
        return ""
    return f"skipped {count} unreadable line{'s' if count != 1 else ''} (see the WARNINGs)"


def parse_offset(value: str) -> float | None:
    """'M:SS', 'MM:SS' or 'H:MM:SS' (with a leading '-' for chat before the start) → seconds; None when it
    is not such a time."""
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    parts = text.lstrip("-").split(":")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return sign * seconds


def number(value: Any) -> float | None:
    """A number from JSON or a CSV cell ('' and None → None)."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def iso_utc(epoch_s: float) -> str:
    """Seconds since the epoch → ISO 8601 in UTC, to the millisecond ('2024-05-01T12:00:00.250Z')."""
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def emoji_or_shortcut(emoji_id: str | None, shortcut: str | None) -> str:
    """An emoji as the viewer wrote it: the emoji itself where YouTube's id is a Unicode emoji, else its
    shortcut (':name:' — a channel's custom emoji), else the id."""
    import emoji

    if emoji_id and emoji.is_emoji(emoji_id):
        return emoji_id
    return shortcut or emoji_id or ""
