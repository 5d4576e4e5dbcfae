"""chat-downloader's items (``chat_downloader URL -o FILE``: ``.json`` a list, ``.jsonl``, ``.csv`` with the nested
fields flattened as ``author.name``…), and the items its ``get_chat`` yields to ``livetopic scrape``.

Items have ``message``, ``message_id``, ``message_type`` (``text_message``, ``paid_message``,
``membership_item``…), ``action_type``, ``timestamp`` (microseconds since the epoch), ``time_in_seconds`` and
``time_text`` (replays), ``author`` {``name``, ``display_name`` (Twitch), ``id``…} and ``emotes``."""

from __future__ import annotations

from typing import Any

from .records import Converted, Record, Skipped, emoji_or_shortcut, iso_utc, number, parse_offset

__all__ = ["NAME", "convert", "matches", "unflatten"]

NAME = "chat-downloader"
# message types whose ``message`` is the viewer's own text (YouTube and Twitch)
TEXT_TYPES = {"text_message", "paid_message", "membership_item", "resubscription"}
KINDS = {
    "membership_item": "membership",
    "paid_message": "paid message without text",
    "paid_sticker": "sticker",
    "deleted_message": "deleted",
    "ban_user": "ban",
    "viewer_engagement_message": "system message",
    "mode_change_message": "system message",
    "placeholder_item": "placeholder",
    "sponsorships_gift_purchase_announcement": "membership gift",
    "sponsorships_gift_redemption_announcement": "membership gift",
    "donation_announcement": "donation",
}


def matches(row: dict[str, Any]) -> bool:
    return "message_type" in row or "action_type" in row or ("message_id" in row and "author" in row)


def unflatten(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row of chat-downloader (``author.name``, ``emotes.0.id``…) back into nested objects; empty
    cells are dropped."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value in (None, "") or not isinstance(key, str):
            continue
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = value
    return out


def _emotes(row: dict[str, Any]) -> list[dict[str, Any]]:
    emotes = row.get("emotes") or []
    if isinstance(emotes, dict):  # from a CSV: {"0": {...}, "1": {...}}
        emotes = [emotes[k] for k in sorted(emotes, key=lambda k: int(k) if str(k).isdigit() else 0)]
    return [e for e in emotes if isinstance(e, dict)]


def _text(row: dict[str, Any]) -> str:
    """The message, with YouTube's Unicode emoji put back where chat-downloader wrote their shortcut."""
    text = str(row.get("message") or "")
    for emote in _emotes(row):
        name, emote_id = emote.get("name"), emote.get("id")
        if isinstance(name, str) and name and isinstance(emote_id, str):
            text = text.replace(name, emoji_or_shortcut(emote_id, name))
    return text


def _kind(message_type: str) -> str:
    if message_type.startswith("ticker_"):
        return "ticker"
    if message_type.startswith("banner"):
        return "banner"
    return KINDS.get(message_type, message_type)


def convert(row: dict[str, Any]) -> list[Converted]:
    message_type = str(row.get("message_type") or row.get("action_type") or "text_message")
    text = _text(row)
    if message_type not in TEXT_TYPES or not text.strip():
        return [Skipped("empty message" if message_type == "text_message" else _kind(message_type))]
    fields = {"text": text}
    author: dict[str, Any] = row["author"] if isinstance(row.get("author"), dict) else {}
    user = author.get("display_name") or author.get("name")
    if user:
        fields["user"] = str(user)
    if row.get("message_id"):
        fields["id"] = str(row["message_id"])
    usec = number(row.get("timestamp"))
    if usec is not None:
        fields["ts"] = iso_utc(usec / 1e6)
    offset = number(row.get("time_in_seconds"))
    if offset is None and isinstance(row.get("time_text"), str):
        offset = parse_offset(row["time_text"])
    return [Record(fields, offset, usec / 1e6 if usec is not None else None)]
