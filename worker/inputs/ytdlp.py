"""yt-dlp's live chat (``yt-dlp --skip-download --write-subs --sub-langs live_chat URL`` → ``<id>.live_chat.json``):
one raw YouTube action a line, wrapped in ``replayChatItemAction`` (replays: the offset inside it; live
downloads: ``videoOffsetTimeMsec`` on the outer object). Chat messages are
``addChatItemAction.item.liveChat…Renderer`` objects with ``message.runs`` (text and emoji runs),
``authorName.simpleText``, ``timestampUsec`` and ``id``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .records import Converted, Record, Skipped, emoji_or_shortcut, iso_utc, number

__all__ = ["NAME", "convert", "matches", "runs_text", "video_id_of"]

NAME = "yt-dlp live_chat.json"
# renderers whose message is the viewer's own text (when present)
TEXT_RENDERERS = {  # renderer → the skip kind when it has no text
    "liveChatTextMessageRenderer": "empty message",
    "liveChatPaidMessageRenderer": "paid message without text",
    "liveChatMembershipItemRenderer": "membership",
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
    "markChatItemAsDeletedAction": "deleted",
    "markChatItemsByAuthorAsDeletedAction": "ban",
    "removeChatItemAction": "deleted",
    "removeChatItemByAuthorAction": "ban",
    "addLiveChatTickerItemAction": "ticker",
    "addBannerToLiveChatCommand": "banner",
    "removeBannerForLiveChatCommand": "banner",
    "showLiveChatTooltipCommand": "system message",
    "updateLiveChatPollAction": "poll",
    "showLiveChatActionPanelAction": "poll",
    "closeLiveChatActionPanelAction": "poll",
}
_VIDEO_ID = re.compile(r"^(?P<id>[\w-]+)\.live_chat\.json(\.part)?$")


def matches(row: dict[str, Any]) -> bool:
    return isinstance(row.get("replayChatItemAction"), dict)


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


def _item(action: dict[str, Any]) -> tuple[str, dict[str, Any]] | str:
    """The renderer of an action that adds (or replaces) a chat item, or the skip kind of any other."""
    for key, inner in (("addChatItemAction", "item"), ("replaceChatItemAction", "replacementItem")):
        if isinstance(action.get(key), dict):
            item = action[key].get(inner) or {}
            name = next(iter(item), "")
            if name in TEXT_RENDERERS:
                return name, item[name]
            return OTHER_RENDERERS.get(name, name or "empty item")
    name = next((k for k in action if k != "clickTrackingParams"), "empty action")
    return ACTION_KINDS.get(name, name)


def _message(name: str, renderer: dict[str, Any], offset_ms: float | None) -> Converted:
    text = runs_text(renderer.get("message"))
    if not text.strip():
        return Skipped(TEXT_RENDERERS[name])
    fields = {"text": text}
    user = runs_text(renderer.get("authorName"))
    if user:
        fields["user"] = user
    if renderer.get("id"):
        fields["id"] = str(renderer["id"])
    usec = number(renderer.get("timestampUsec"))
    if usec is not None:
        fields["ts"] = iso_utc(usec / 1e6)
    return Record(fields, offset_ms / 1000 if offset_ms is not None else None, usec / 1e6 if usec is not None else None)


def convert(row: dict[str, Any]) -> list[Converted]:
    wrapper = row["replayChatItemAction"]
    offset_ms = number(wrapper.get("videoOffsetTimeMsec", row.get("videoOffsetTimeMsec")))
    out: list[Converted] = []
    for action in wrapper.get("actions") or []:
        found = _item(action) if isinstance(action, dict) else "empty action"
        if isinstance(found, str):
            out.append(Skipped(found))
        else:
            out.append(_message(*found, offset_ms))
    return out or [Skipped("empty action")]
