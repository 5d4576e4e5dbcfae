"""What the readers produce: a :class:`Record` (one comment, as ``push`` sends it) or a :class:`Skipped` item
(a chat item without viewer text), and the small conversions every shape shares (times, emoji, numbers)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "Converted",
    "Reading",
    "Record",
    "Skipped",
    "emoji_or_shortcut",
    "iso_utc",
    "number",
    "parse_offset",
    "summary_of_skipped",
]


@dataclass(slots=True)
class Record:
    """One comment: the input-stream fields, its offset into the broadcast and its wall-clock time."""

    fields: dict[str, str]
    offset_s: float | None = None  # position in the broadcast (replays, chat logs), for --speed
    time_s: float | None = None  # when it was sent (seconds since the epoch), for --speed on live chat


@dataclass(frozen=True, slots=True)
class Skipped:
    """A chat item that carries no viewer text (a membership, a sticker, a deleted message…), by kind."""

    kind: str


Converted = Record | Skipped


@dataclass(slots=True)
class Reading:
    """What the files held: the comments in order, and the items skipped, counted by kind."""

    records: list[Record] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, items: Iterable[Converted]) -> None:
        for item in items:
            if isinstance(item, Skipped):
                self.skipped[item.kind] += 1
            else:
                self.records.append(item)


def summary_of_skipped(skipped: Counter[str]) -> str:
    """'skipped 3 items without text (membership 2, deleted 1)', or '' when nothing was skipped."""
    total = sum(skipped.values())
    if not total:
        return ""
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"skipped {total} items without text ({kinds})"


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
