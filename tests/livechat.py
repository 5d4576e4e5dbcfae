"""Realistic live chats, raw, as the sites send them, with what livetopic must make of them: YouTube's live chat
actions (messages with badges, Super Chats in several currencies, emoji, membership joins and milestones,
stickers, tickers, a system message, deletions and bans); Twitch's IRC lines are in tests/twitchchat.py. The
libraries' own writers turn these into files (tests/chatwriters.py; pytchat's, which is not installed here, in
tests/fixtures/livechat/make_pytchat_fixtures.py). Standard library only. The chat text is the caller's
(written by hand in tests; never copied from real data)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TEXTS", "Chat", "continuation", "iso", "replayed", "youtube_chat"]

T0_US = 1_714_564_800_000_000  # 2024-05-01T12:00:00Z
TEXTS = [
    "加油加油",
    "這球好扯",
    "gg",
    "主播好帥",
    "笑死 wwww",
    "攔網漂亮",
    "發球失誤了",
    "nice block",
    "換人吧",
    "第五局!",
]
YT_PAID = [
    ("NT$75.00", "75", "TWD"),
    ("$5.00", "5", "USD"),
    ("¥500", "500", "JPY"),
    ("€2.50", "2.5", "EUR"),
    ("NT$1,500.00", "1500", "TWD"),
]
SMILE = {
    "emojiId": "😂",
    "shortcuts": [":face_with_tears_of_joy:", ":joy:"],
    "searchTerms": ["joy"],
    "image": {"thumbnails": [{"url": "https://yt3.example/emoji/1f602.png"}]},
}
CUSTOM = {
    "emojiId": "UCabc123/Xyz789",
    "shortcuts": [":_hello:"],
    "searchTerms": ["_hello"],
    "isCustomEmoji": True,
    "image": {"thumbnails": [{"url": "https://yt3.example/custom/hello.png"}]},
}


@dataclass
class Chat:
    """What a generated chat holds (``actions`` for YouTube, ``lines`` for Twitch) and what must come of it:
    the comments' input fields in order (without ``channel``), the retractions, the skipped items by kind."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    comments: list[dict[str, str]] = field(default_factory=list)
    retractions: list[dict[str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def iso(us: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(us / 1e6, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- YouTube ---------------------------------------------------------------------------------------------
_YT_ROLES = {0: ["OWNER"], 1: ["MODERATOR"], 2: ["member"], 3: ["member"], 4: ["VERIFIED"], 5: ["MODERATOR", "member"]}
_YT_BADGES = {0: "owner", 1: "moderator", 2: "member", 3: "member", 4: "verified", 5: "moderator,member"}


def _yt_badges(k: int) -> list[dict[str, Any]]:
    out = []
    for role in _YT_ROLES.get(k, []):
        if role == "member":
            out.append(
                {
                    "liveChatAuthorBadgeRenderer": {
                        "customThumbnail": {
                            "thumbnails": [
                                {"url": "https://yt3.example/badge=s16"},
                                {"url": "https://yt3.example/badge=s32"},
                            ]
                        },
                        "tooltip": "Member (6 months)",
                        "accessibility": {"accessibilityData": {"label": "Member (6 months)"}},
                    }
                }
            )
        else:
            out.append(
                {
                    "liveChatAuthorBadgeRenderer": {
                        "icon": {"iconType": role},
                        "tooltip": role.title(),
                        "accessibility": {"accessibilityData": {"label": role.title()}},
                    }
                }
            )
    return out


def _yt_author(k: int) -> tuple[str, str]:
    return f"觀眾{k}", "UC" + f"{k:02d}".rjust(22, "x")


def _yt_renderer(mid: str, k: int, us: int, runs: list[dict[str, Any]] | None) -> dict[str, Any]:
    name, channel_id = _yt_author(k)
    out: dict[str, Any] = {
        "authorName": {"simpleText": name},
        "authorPhoto": {
            "thumbnails": [
                {"url": "https://yt4.example/a=s32", "width": 32, "height": 32},
                {"url": "https://yt4.example/a=s64", "width": 64, "height": 64},
            ]
        },
        "contextMenuEndpoint": {
            "clickTrackingParams": "CAEQl98BIhMI",
            "commandMetadata": {"webCommandMetadata": {"ignoreNavigation": True}},
        },
        "id": mid,
        "timestampUsec": str(us),
        "authorExternalChannelId": channel_id,
        "contextMenuAccessibility": {"accessibilityData": {"label": "Chat actions"}},
    }
    if runs is not None:
        out["message"] = {"runs": runs}
    if _YT_ROLES.get(k):
        out["authorBadges"] = _yt_badges(k)
    return out


def _add(item_name: str, renderer: dict[str, Any]) -> dict[str, Any]:
    return {"clickTrackingParams": "CAEQl98BIhMI", "addChatItemAction": {"item": {item_name: renderer}, "clientId": ""}}


def _paid(shown: str) -> dict[str, Any]:
    """A Super Chat renderer's amount and colours."""
    return {
        "purchaseAmountText": {"simpleText": shown},
        "headerBackgroundColor": 4278239141,
        "bodyBackgroundColor": 4280150454,
        "headerTextColor": 4278190080,
        "bodyTextColor": 4278190080,
        "authorNameTextColor": 2315255808,
        "timestampColor": 2147483648,
    }


def _yt_fields(k: int, mid: str, us: int, text: str, message_type: str) -> dict[str, str]:
    """The fields livetopic pushes for a YouTube message by author ``k``."""
    name, author_id = _yt_author(k)
    fields = {
        "text": text,
        "user": name,
        "author_id": author_id,
        "id": mid,
        "ts": iso(us),
        "message_type": message_type,
    }
    if _YT_BADGES.get(k):
        fields["badges"] = _YT_BADGES[k]
    return fields


def _yt_message(chat: Chat, i: int, text: str, prefix: str) -> tuple[str, str]:
    """Message ``i`` (a text message, or every 5th a Super Chat), added to ``chat``; its id and author id."""
    k, us, mid = i % 13, T0_US + i * 250_000, f"{prefix}{i:05d}-ChwKGkNJ"
    runs: list[dict[str, Any]] = [{"text": text}]
    expected_text = text
    if i % 7 == 3:
        runs += [{"emoji": SMILE}, {"emoji": CUSTOM}]
        expected_text += "😂:_hello:"
    renderer = _yt_renderer(mid, k, us, runs)
    fields = _yt_fields(k, mid, us, expected_text, "text_message")
    author_id = fields["author_id"]
    if i % 5 == 4:
        shown, amount, currency = YT_PAID[(i // 5) % len(YT_PAID)]
        renderer.update(_paid(shown))
        fields.update(message_type="paid_message", amount=amount, currency=currency)
        chat.actions.append(_add("liveChatPaidMessageRenderer", renderer))
    else:
        chat.actions.append(_add("liveChatTextMessageRenderer", renderer))
    chat.comments.append(fields)
    return mid, author_id


def _yt_extras(chat: Chat, i: int, ids: list[str], author_id: str, prefix: str) -> None:
    k, us = i % 13, T0_US + i * 250_000 + 100_000
    if i % 11 == 0:  # a new member: YouTube's own header text, no message
        member = _yt_renderer(f"{prefix}{i:05d}-join", k, us, None)
        member["headerSubtext"] = {"runs": [{"text": "Welcome to "}, {"text": "the club"}, {"text": "!"}]}
        chat.actions.append(_add("liveChatMembershipItemRenderer", member))
        chat.skipped["membership"] += 1
    if i % 12 == 7:  # a membership milestone with the viewer's own message
        mid = f"{prefix}{i:05d}-milestone"
        milestone = _yt_renderer(mid, k, us, [{"text": f"六個月了 {i}"}])
        milestone["headerPrimaryText"] = {"runs": [{"text": "Member for "}, {"text": "6"}, {"text": " months"}]}
        milestone["headerSubtext"] = {"simpleText": "the club"}
        chat.actions.append(_add("liveChatMembershipItemRenderer", milestone))
        chat.comments.append(_yt_fields(k, mid, us, f"六個月了 {i}", "membership_item"))
    if i % 13 == 0:
        sticker = _yt_renderer(f"{prefix}{i:05d}-sticker", k, us, None)
        sticker.update(
            {
                "purchaseAmountText": {"simpleText": "NT$30.00"},
                "sticker": {"thumbnails": [{"url": "https://lh3.example/s=s40"}, {"url": "https://lh3.example/s=s80"}]},
                "moneyChipBackgroundColor": 1,
                "moneyChipTextColor": 2,
                "backgroundColor": 3,
                "stickerDisplayWidth": 40,
                "stickerDisplayHeight": 40,
            }
        )
        chat.actions.append(_add("liveChatPaidStickerRenderer", sticker))
        chat.skipped["sticker"] += 1
    if i % 19 == 0:
        paid = _yt_renderer(f"{prefix}{i:05d}-paid", k, us, None)
        paid.update(_paid("$2.00"))
        chat.actions.append(_add("liveChatPaidMessageRenderer", paid))
        chat.skipped["paid message without text"] += 1
    if i % 23 == 5:
        ticker = {
            "liveChatTickerPaidMessageItemRenderer": {
                "id": f"{prefix}{i:05d}-ticker",
                "amount": {"simpleText": "NT$75.00"},
                "amountTextColor": 1,
                "startBackgroundColor": 2,
                "endBackgroundColor": 3,
                "durationSec": 120,
                "fullDurationSec": 120,
                "authorExternalChannelId": author_id,
                "authorPhoto": {"thumbnails": [{"url": "https://yt4.example/a"}]},
            }
        }
        chat.actions.append({"addLiveChatTickerItemAction": {"item": ticker, "durationSec": "120"}})
        chat.skipped["ticker"] += 1
    if i % 17 == 16:  # a moderator deletes the message before this one
        chat.actions.append(
            {
                "clickTrackingParams": "CAEQl98BIhMI",
                "markChatItemAsDeletedAction": {
                    "deletedStateMessage": {"runs": [{"text": "[message deleted]"}]},
                    "targetItemId": ids[-2],
                },
            }
        )
        chat.retractions.append(
            {"kind": "retract", "action": "delete", "target_id": ids[-2], "id": f"delete:{ids[-2]}"}
        )
    if i % 29 == 28:  # and bans this message's author
        chat.actions.append(
            {
                "clickTrackingParams": "CAEQl98BIhMI",
                "markChatItemsByAuthorAsDeletedAction": {
                    "deletedStateMessage": {"runs": [{"text": "[message deleted]"}]},
                    "externalChannelId": author_id,
                },
            }
        )
        chat.retractions.append({"kind": "retract", "action": "ban", "target_author_id": author_id})


def youtube_chat(n: int, prefix: str = "yt", texts: list[str] | None = None) -> Chat:
    """``n`` messages (and what comes between them) as live YouTube actions, in order. Every 31st message has
    two lines. Expected ``ts`` are UTC; retractions' ``id`` for bans depends on the writer (offset or none)."""
    chat, ids = Chat(), []
    welcome = {
        "liveChatViewerEngagementMessageRenderer": {
            "id": f"{prefix}-welcome",
            "timestampUsec": str(T0_US - 1_000_000),
            "icon": {"iconType": "YOUTUBE_ROUND"},
            "message": {"runs": [{"text": "Welcome to live chat! Remember to guard your privacy."}]},
        }
    }
    chat.actions.append({"addChatItemAction": {"item": welcome}})
    chat.skipped["system message"] += 1
    for i in range(n):
        text = (texts or TEXTS)[i % len(texts or TEXTS)]
        if i % 31 == 10:
            text += "\n第二行"
        mid, author_id = _yt_message(chat, i, text, prefix)
        ids.append(mid)
        _yt_extras(chat, i, ids, author_id, prefix)
    return chat


def continuation(actions: list[dict[str, Any]], following: str | None, replay: bool = False) -> dict[str, Any]:
    """A get_live_chat (or get_live_chat_replay) reply holding ``actions``."""
    body: dict[str, Any] = {"actions": actions}
    if following:
        key = "liveChatReplayContinuationData" if replay else "invalidationContinuationData"
        body["continuations"] = [{key: {"continuation": following, "timeoutMs": 1}}]
    return {"responseContext": {}, "continuationContents": {"liveChatContinuation": body}}


def replayed(actions: list[dict[str, Any]], step_ms: int = 250) -> list[dict[str, Any]]:
    """Actions as a replay serves them: each in a ``replayChatItemAction`` with its offset into the video, and
    chat items with their ``timestampText`` ("0:05")."""
    out = []
    for i, action in enumerate(actions):
        action = json.loads(json.dumps(action))
        for renderer in action.get("addChatItemAction", {}).get("item", {}).values():
            renderer["timestampText"] = {"simpleText": f"{i * step_ms // 60_000}:{i * step_ms // 1000 % 60:02d}"}
        out.append(
            {
                "clickTrackingParams": "CAEQl98BIhMI",
                "replayChatItemAction": {"actions": [action], "videoOffsetTimeMsec": str(i * step_ms)},
            }
        )
    return out
