"""pytchat's (and pytchat-ng's) chat items as JSON (``chatdata.json()``, or one ``chat.json()`` a line):
``message``, ``messageEx`` (text and emoji parts), ``id``, ``type`` (``textMessage``, ``superChat``,
``superSticker``, ``newSponsor``, ``donation``), ``timestamp`` (milliseconds), ``elapsedTime`` ("0:36",
replays), ``author`` {``name``, ``channelId``…}."""

from __future__ import annotations

from typing import Any

from .records import Converted, Record, Skipped, emoji_or_shortcut, iso_utc, number, parse_offset

__all__ = ["NAME", "convert", "matches"]

NAME = "pytchat JSON"
TEXT_TYPES = {"textMessage": "empty message", "superChat": "paid message without text"}
KINDS = {"superSticker": "sticker", "newSponsor": "membership", "donation": "donation"}


def matches(row: dict[str, Any]) -> bool:
    author = row.get("author")
    return "type" in row and ("elapsedTime" in row or "messageEx" in row
                              or (isinstance(author, dict) and "channelId" in author))


def _text(row: dict[str, Any]) -> str:
    """The message, from ``messageEx`` where present: emoji parts as the emoji itself or their shortcut."""
    parts = row.get("messageEx")
    if not isinstance(parts, list):
        return str(row.get("message") or "")
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict):
            out.append(emoji_or_shortcut(part.get("id"), part.get("txt")))
    return "".join(out)


def convert(row: dict[str, Any]) -> list[Converted]:
    kind = str(row.get("type") or "")
    text = _text(row)
    if kind not in TEXT_TYPES:
        return [Skipped(KINDS.get(kind, kind or "untyped item"))]
    if not text.strip():
        return [Skipped(TEXT_TYPES[kind])]
    fields = {"text": text}
    author: dict[str, Any] = row["author"] if isinstance(row.get("author"), dict) else {}
    if author.get("name"):
        fields["user"] = str(author["name"])
    if row.get("id"):
        fields["id"] = str(row["id"])
    ms = number(row.get("timestamp"))
    if ms is not None:
        fields["ts"] = iso_utc(ms / 1000)
    elapsed = row.get("elapsedTime")
    offset = parse_offset(elapsed) if isinstance(elapsed, str) else None
    return [Record(fields, offset, ms / 1000 if ms is not None else None)]
