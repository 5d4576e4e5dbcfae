"""chat-downloader's items (``chat_downloader URL -o FILE``: ``.json`` a list, ``.jsonl``, ``.csv`` with the nested
fields flattened as ``author.name``…), and the items its ``get_chat`` yields to ``livetopic scrape``.

Items have ``message``, ``message_id``, ``message_type`` (``text_message``, ``paid_message``,
``membership_item``…), ``action_type``, ``timestamp`` (microseconds since the epoch), ``time_in_seconds`` and
``time_text`` (replays), ``author`` {``name``, ``display_name`` (Twitch), ``id``, ``badges``…}, ``money``
{``amount``, ``currency``, ``text``}, ``emotes``, and on Twitch ``bits`` and ``channel_id`` (the room id).

Viewer text: YouTube's text messages, Super Chats and membership milestones with a message; on Twitch every
chat message (``PRIVMSG``: plain, highlighted, with bits…) and every user notice that carries the viewer's
own message (subscriptions and resubscriptions with a message, announcements…). Deletions and bans become
:class:`~.records.Retraction` entries; everything else is skipped, by kind."""

from __future__ import annotations

from typing import Any

from .fields import badges_text, money_of, put, record, retract_author, retract_message
from .records import Converted, Retraction, Skipped, emoji_or_shortcut, number, parse_offset

__all__ = ["NAME", "convert", "matches", "unflatten"]

NAME = "chat-downloader"
YOUTUBE_TEXT_TYPES = {"text_message", "paid_message", "membership_item"}
# Twitch: a PRIVMSG (action text_message, whatever its msg-id) or a USERNOTICE's trailing message is the viewer's
TWITCH_TEXT_ACTIONS = {"text_message", "user_notice"}
DELETIONS = {"deleted_message", "delete_message"}
KINDS = {  # message type → the skip kind (one name per kind, the same for every scraper)
    "membership_item": "membership",
    "paid_message": "paid message without text",
    "paid_sticker": "sticker",
    "deleted_message": "deleted",
    "delete_message": "deleted",
    "ban_user": "ban",
    "clear_chat": "chat cleared",
    "viewer_engagement_message": "system message",
    "mode_change_message": "system message",
    "placeholder_item": "placeholder",
    "sponsorships_gift_purchase_announcement": "membership gift",
    "sponsorships_gift_redemption_announcement": "membership gift",
    "donation_announcement": "donation",
    "subscription": "subscription",
    "resubscription": "subscription",
    "extend_subscription": "subscription",
    "prime_paid_upgrade": "subscription",
    "gift_paid_upgrade": "subscription",
    "anonymous_gift_paid_upgrade": "subscription",
    "subscription_gift": "subscription gift",
    "anonymous_subscription_gift": "subscription gift",
    "mystery_subscription_gift": "subscription gift",
    "anonymous_mystery_subscription_gift": "subscription gift",
    "raid": "raid",
    "unraid": "raid",
}
SYSTEM_ACTIONS = {"notice", "room_state", "user_state", "successful_login", "reconnect", "host_target"}


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


def _listed(value: Any) -> list[dict[str, Any]]:
    """A list of objects (a CSV gives {"0": {...}, "1": {...}})."""
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value, key=lambda k: int(k) if str(k).isdigit() else 0)]
    return [v for v in value or [] if isinstance(v, dict)] if isinstance(value, list) else []


def _text(row: dict[str, Any]) -> str:
    """The message, with YouTube's Unicode emoji put back where chat-downloader wrote their shortcut."""
    text = str(row.get("message") or "")
    for emote in _listed(row.get("emotes")):
        name, emote_id = emote.get("name"), emote.get("id")
        if isinstance(name, str) and name and isinstance(emote_id, str):
            text = text.replace(name, emoji_or_shortcut(emote_id, name))
    return text


def _kind(row: dict[str, Any], message_type: str) -> str:
    if message_type.startswith("ticker_"):
        return "ticker"
    if message_type.startswith(("banner", "remove_banner")):
        return "banner"
    if message_type == "text_message":
        return "empty message"
    if str(row.get("action_type")) in SYSTEM_ACTIONS and message_type not in KINDS:
        return "system message"
    return KINDS.get(message_type, message_type)


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _badges(author: dict[str, Any]) -> str:
    roles = [str(b.get("name") or b.get("icon_name") or b.get("title") or "") for b in _listed(author.get("badges"))]
    roles += [role for role in ("moderator", "subscriber") if _truthy(author.get(f"is_{role}"))]
    return badges_text(roles)


def _moderation(row: dict[str, Any], message_type: str, author: dict[str, Any]) -> Converted:
    """A deletion (by message id) or a ban/timeout (by author id) as a retraction (with the channel id where
    the item has one); skipped without its target."""
    out = _retraction(row, message_type, author)
    if isinstance(out, Retraction):
        put(out.fields, "channel_id", row.get("channel_id"))
    return out


def _retraction(row: dict[str, Any], message_type: str, author: dict[str, Any]) -> Retraction | Skipped:
    usec = number(row.get("timestamp"))
    offset = number(row.get("time_in_seconds"))
    target = row.get("target_message_id")
    if message_type in DELETIONS or target:  # YouTube's removeChatItemAction is a 'ban_user' with a message id
        if not target:
            return Skipped("deleted")
        return retract_message(str(target), usec=usec, offset_s=offset, user=author.get("name"))
    author_id = author.get("target_id") or row.get("target_author_id") or author.get("id")
    if not author_id:
        return Skipped("ban")
    timeout = row.get("ban_type") == "timeout" or number(row.get("ban_duration")) is not None
    return retract_author(
        str(author_id),
        action="timeout" if timeout else "ban",
        usec=usec,
        offset_s=offset,
        user=row.get("banned_user") or author.get("name"),
    )


def _is_viewer_text(row: dict[str, Any], message_type: str) -> bool:
    if message_type in DELETIONS or message_type == "ban_user":
        return False
    return message_type in YOUTUBE_TEXT_TYPES or str(row.get("action_type")) in TWITCH_TEXT_ACTIONS


def convert(row: dict[str, Any]) -> list[Converted]:
    message_type = str(row.get("message_type") or row.get("action_type") or "text_message")
    author: dict[str, Any] = row["author"] if isinstance(row.get("author"), dict) else {}
    if message_type in DELETIONS or message_type == "ban_user":
        return [_moderation(row, message_type, author)]
    text = _text(row)
    if not _is_viewer_text(row, message_type) or not text.strip():
        return [Skipped(_kind(row, message_type))]
    fields = {"text": text}
    put(fields, "user", author.get("display_name") or author.get("name"))
    put(fields, "author_id", author.get("id"))
    put(fields, "id", row.get("message_id"))
    fields["message_type"] = message_type
    money: dict[str, Any] = row["money"] if isinstance(row.get("money"), dict) else {}
    amount = number(money.get("amount"))
    parsed = money_of(money.get("text"))
    put(fields, "amount", amount if amount is not None else parsed and parsed[0])
    put(fields, "currency", money.get("currency") or (parsed and parsed[1]))
    put(fields, "badges", _badges(author))
    bits = number(row.get("bits"))
    put(fields, "bits", int(bits) if bits else None)
    put(fields, "channel_id", row.get("channel_id"))
    offset = number(row.get("time_in_seconds"))
    if offset is None and isinstance(row.get("time_text"), str):
        offset = parse_offset(row["time_text"])
    return [record(fields, usec=row.get("timestamp"), offset_s=offset)]
