"""Raw YouTube live chat actions, as yt-dlp and pytchat write them:

- yt-dlp's live chat (``yt-dlp --skip-download --write-subs --sub-langs live_chat URL`` →
  ``<id>.live_chat.json``): one action a line, wrapped in ``replayChatItemAction`` (replays: the offset inside
  it; live downloads: ``videoOffsetTimeMsec`` on the outer object);
- pytchat's ``JsonfileArchiver``: one action a line, unwrapped (``{"addChatItemAction": …}``); and any JSON list
  or JSONL of such actions.

Chat messages are ``addChatItemAction.item.liveChat…Renderer`` objects with ``message.runs`` (text and emoji
runs), ``authorName.simpleText``, ``authorExternalChannelId``, ``authorBadges``, ``timestampUsec``,
``timestampText`` (replays), ``purchaseAmountText`` (Super Chats) and ``id``. A deletion
(``markChatItemAsDeletedAction``, ``removeChatItemAction``: by ``targetItemId``) or a ban
(``markChatItemsByAuthorAsDeletedAction``, ``removeChatItemByAuthorAction``: by ``externalChannelId``) is a
:class:`~.records.Retraction`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .fields import badges_text, money_of, put, record, retract_author, retract_message
from .records import Converted, Skipped, emoji_or_shortcut, number, parse_offset

__all__ = ["NAME", "convert", "matches", "runs_text", "video_id_of"]

NAME = "YouTube actions"
# renderers whose message is the viewer's own text (when present): their message type, and the skip kind without
TEXT_RENDERERS = {
    "liveChatTextMessageRenderer": ("text_message", "empty message"),
    "liveChatPaidMessageRenderer": ("paid_message", "paid message without text"),
    "liveChatMembershipItemRenderer": ("membership_item", "membership"),
}
OTHER_RENDERERS = {
    "liveChatPaidStickerRenderer": "sticker",
    "liveChatViewerEngagementMessageRenderer": "system message",
    "liveChatModeChangeMessageRenderer": "system message",
    "liveChatPlaceholderItemRenderer": "placeholder",
    "liveChatSponsorshipsGiftPurchaseAnnouncementRenderer": "membership gift",
    "liveChatSponsorshipsGiftRedemptionAnnouncementRenderer": "membership gift",
    "liveChatDonationAnnouncementRenderer": "donation",
}
ACTION_KINDS = {
    "addLiveChatTickerItemAction": "ticker",
    "addBannerToLiveChatCommand": "banner",
    "removeBannerForLiveChatCommand": "banner",
    "showLiveChatTooltipCommand": "system message",
    "updateLiveChatPollAction": "poll",
    "showLiveChatActionPanelAction": "poll",
    "closeLiveChatActionPanelAction": "poll",
}
BY_ID = ("markChatItemAsDeletedAction", "removeChatItemAction")  # targetItemId
BY_AUTHOR = ("markChatItemsByAuthorAsDeletedAction", "removeChatItemByAuthorAction")  # externalChannelId
_VIDEO_ID = re.compile(r"^(?P<id>[\w-]+)\.live_chat\.json(\.part)?$")


def _is_action(row: dict[str, Any]) -> bool:
    """A raw action: every key (but ``clickTrackingParams``) an ``…Action`` or ``…Command`` holding an object."""
    keys = [k for k in row if k != "clickTrackingParams"]
    return bool(keys) and all(k.endswith(("Action", "Command")) and isinstance(row[k], dict) for k in keys)


def matches(row: dict[str, Any]) -> bool:
    return isinstance(row.get("replayChatItemAction"), dict) or _is_action(row)


def video_id_of(path: Path) -> str | None:
    """The video id in yt-dlp's default file name, '<id>.live_chat.json'."""
    found = _VIDEO_ID.match(path.name)
    return found["id"] if found else None


def runs_text(message: Any) -> str:
    """``message.runs`` → what the viewer wrote: text runs as they are, emoji runs as the emoji itself (a
    Unicode emoji) or its shortcut (a channel's custom emoji); ``simpleText`` messages as they are."""
    if not isinstance(message, dict):
        return ""
    if isinstance(message.get("simpleText"), str):
        return str(message["simpleText"])
    parts = []
    for run in message.get("runs") or []:
        if not isinstance(run, dict):
            continue
        if isinstance(run.get("text"), str):
            parts.append(run["text"])
        elif isinstance(run.get("emoji"), dict):
            emoji = run["emoji"]
            shortcuts = emoji.get("shortcuts") or []
            parts.append(emoji_or_shortcut(emoji.get("emojiId"), shortcuts[0] if shortcuts else None))
    return "".join(parts)


def _badges(renderer: dict[str, Any]) -> str:
    roles = []
    for badge in renderer.get("authorBadges") or []:
        inner = badge.get("liveChatAuthorBadgeRenderer") if isinstance(badge, dict) else None
        if not isinstance(inner, dict):
            continue
        icon = inner.get("icon")
        if isinstance(icon, dict) and icon.get("iconType"):
            roles.append(str(icon["iconType"]))
        elif inner.get("customThumbnail"):  # a channel's member badge
            roles.append("member")
    return badges_text(roles)


def _message(name: str, renderer: dict[str, Any], offset_s: float | None) -> Converted:
    message_type, without = TEXT_RENDERERS[name]
    text = runs_text(renderer.get("message"))
    if not text.strip():
        return Skipped(without)
    fields = {"text": text}
    put(fields, "user", runs_text(renderer.get("authorName")))
    put(fields, "author_id", renderer.get("authorExternalChannelId"))
    put(fields, "id", renderer.get("id"))
    fields["message_type"] = message_type
    money = money_of(runs_text(renderer.get("purchaseAmountText")))
    if money is not None:
        fields["amount"], fields["currency"] = money
    put(fields, "badges", _badges(renderer))
    if offset_s is None:  # pytchat's archiver drops the replay wrapper: the renderer's own time text remains
        offset_s = parse_offset(runs_text(renderer.get("timestampText")))
    return record(fields, usec=renderer.get("timestampUsec"), offset_s=offset_s)


def _moderation(name: str, body: dict[str, Any], offset_s: float | None) -> Converted:
    if name in BY_ID:
        target = body.get("targetItemId")
        return retract_message(str(target), offset_s=offset_s) if target else Skipped("deleted")
    author = body.get("externalChannelId")
    return retract_author(str(author), offset_s=offset_s) if author else Skipped("ban")


def _action(action: dict[str, Any], offset_s: float | None) -> Converted:
    """One action: a chat message, a retraction, or the skip kind of anything else."""
    for key, inner in (("addChatItemAction", "item"), ("replaceChatItemAction", "replacementItem")):
        if isinstance(action.get(key), dict):
            item = action[key].get(inner) or {}
            name = next(iter(item), "") if isinstance(item, dict) else ""
            if name in TEXT_RENDERERS and isinstance(item[name], dict):
                return _message(name, item[name], offset_s)
            return Skipped(OTHER_RENDERERS.get(name, name or "empty item"))
    name = next((k for k in action if k != "clickTrackingParams"), "empty action")
    if name in BY_ID + BY_AUTHOR and isinstance(action[name], dict):
        return _moderation(name, action[name], offset_s)
    return Skipped(ACTION_KINDS.get(name, name))


def convert(row: dict[str, Any]) -> list[Converted]:
    wrapper = row.get("replayChatItemAction")
    if not isinstance(wrapper, dict):  # a raw action (pytchat's archiver)
        return [_action(row, None)]
    offset_ms = number(wrapper.get("videoOffsetTimeMsec", row.get("videoOffsetTimeMsec")))
    offset_s = offset_ms / 1000 if offset_ms is not None else None
    out = [
        _action(a, offset_s) if isinstance(a, dict) else Skipped("empty action") for a in wrapper.get("actions") or []
    ]
    return out or [Skipped("empty action")]
