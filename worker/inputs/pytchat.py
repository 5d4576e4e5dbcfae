"""pytchat's (and pytchat-ng's) chat items as JSON (``chatdata.json()``, or one ``chat.json()`` a line):
``message``, ``messageEx`` (text and emoji parts), ``id``, ``type`` (``textMessage``, ``superChat``,
``superSticker``, ``newSponsor``, ``donation``), ``timestamp`` (milliseconds), ``elapsedTime`` ("0:36",
replays), ``amountValue``/``currency`` (Super Chats), ``author`` {``name``, ``channelId``, ``isChatOwner``,
``isChatModerator``, ``isChatSponsor``, ``isVerified``…}.

pytchat's processors keep only added chat items (no deletions or bans: read its ``JsonfileArchiver`` output,
the raw actions, for those), and a ``newSponsor`` item's message is YouTube's header ("Welcome to …"), never the
viewer's: a membership is skipped. Its ``TSVArchiver`` output is refused (see :mod:`.textlogs`)."""

from __future__ import annotations

from typing import Any

from .fields import badges_text, currency_code, put, record
from .records import Converted, Skipped, emoji_or_shortcut, number, parse_offset

__all__ = ["NAME", "convert", "matches"]

NAME = "pytchat JSON"
TEXT_TYPES = {  # pytchat type → (message type, the skip kind without text)
    "textMessage": ("text_message", "empty message"),
    "superChat": ("paid_message", "paid message without text"),
}
KINDS = {"superSticker": "sticker", "newSponsor": "membership", "donation": "donation"}
ROLE_FLAGS = {
    "isChatOwner": "owner",
    "isChatModerator": "moderator",
    "isChatSponsor": "member",
    "isVerified": "verified",
}


def matches(row: dict[str, Any]) -> bool:
    author = row.get("author")
    return "type" in row and (
        "elapsedTime" in row or "messageEx" in row or (isinstance(author, dict) and "channelId" in author)
    )


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
    if kind not in TEXT_TYPES:
        return [Skipped(KINDS.get(kind, kind or "untyped item"))]
    message_type, without = TEXT_TYPES[kind]
    text = _text(row)
    if not text.strip():
        return [Skipped(without)]
    fields = {"text": text}
    author: dict[str, Any] = row["author"] if isinstance(row.get("author"), dict) else {}
    put(fields, "user", author.get("name"))
    put(fields, "author_id", author.get("channelId"))
    put(fields, "id", row.get("id"))
    fields["message_type"] = message_type
    amount = number(row.get("amountValue"))
    if kind == "superChat" and amount is not None:
        put(fields, "amount", amount)
        put(fields, "currency", currency_code(row.get("currency")))  # pytchat knows "￥" but not "¥"
    put(fields, "badges", badges_text(role for flag, role in ROLE_FLAGS.items() if author.get(flag) is True))
    ms = number(row.get("timestamp"))
    elapsed = row.get("elapsedTime")
    offset = parse_offset(elapsed) if isinstance(elapsed, str) else None
    return [record(fields, usec=ms * 1000 if ms is not None else None, offset_s=offset)]
