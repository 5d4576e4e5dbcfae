"""Chat items written by hand in each scraper's exact shape (chat-downloader, pytchat, yt-dlp's live chat), for
tests: text messages (with Unicode and custom emoji runs, CJK text), paid messages with and without text,
membership items, stickers, deleted messages (kind ``RETRACT``: pushed as retractions, not skipped), tickers.
Message texts come from the caller. tests/livechat.py has fuller chats, written by the libraries themselves."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .livechat import CUSTOM, SMILE, T0_US

RETRACT = "retract"  # the kind of a deletion: a retraction entry, not a skipped item


@dataclass(frozen=True)
class Message:
    id: str
    user: str
    text: str  # what the viewer wrote (a 😂 and a :_hello: emoji are added as runs to some)
    us: int  # timestamp, microseconds since the epoch
    emoji: bool = False


def messages(texts: Sequence[str], n: int, prefix: str = "m") -> list[Message]:
    out = []
    for i in range(n):
        text = texts[i % len(texts)].strip() or "加油"
        out.append(Message(f"{prefix}{i:05d}-ChwKGkNJ", f"觀眾{i % 97}", text, T0_US + i * 250_000, emoji=i % 7 == 3))
    return out


def expected_text(m: Message) -> str:
    return m.text + "😂:_hello:" if m.emoji else m.text


# --- yt-dlp: raw YouTube actions, one a line -----------------------------------------------------------
def _runs(m: Message) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = [{"text": m.text}]
    if m.emoji:
        runs += [{"emoji": SMILE}, {"emoji": CUSTOM}]
    return runs


def _renderer(m: Message) -> dict[str, Any]:
    return {
        "message": {"runs": _runs(m)},
        "authorName": {"simpleText": m.user},
        "authorPhoto": {"thumbnails": [{"url": "https://yt4.example/a.jpg", "width": 32, "height": 32}]},
        "contextMenuEndpoint": {"clickTrackingParams": "CAEQl98BIhMI"},
        "id": m.id,
        "timestampUsec": str(m.us),
        "authorExternalChannelId": "UC" + m.user.encode().hex()[:22],
        "contextMenuAccessibility": {"accessibilityData": {"label": "Chat actions"}},
    }


def ytdlp_line(action: dict[str, Any], offset_ms: int, live: bool) -> str:
    if live:
        row = {"replayChatItemAction": {"actions": [action]}, "videoOffsetTimeMsec": str(offset_ms), "isLive": True}
    else:
        row = {
            "clickTrackingParams": "CAEQl98BIhMI",
            "replayChatItemAction": {
                "actions": [{"clickTrackingParams": "CAEQl98BIhMI", **action}],
                "videoOffsetTimeMsec": str(offset_ms),
            },
        }
    return json.dumps(row, ensure_ascii=False)


def ytdlp_actions(m: Message, i: int) -> list[tuple[dict[str, Any], str | None]]:
    """(action, skip kind or None) for message ``i``: the message, and every so often something else."""
    out: list[tuple[dict[str, Any], str | None]] = []
    if i % 5 == 4:
        paid = {**_renderer(m), "purchaseAmountText": {"simpleText": "NT$75.00"}, "headerBackgroundColor": 4278239141}
        out.append(({"addChatItemAction": {"item": {"liveChatPaidMessageRenderer": paid}, "clientId": ""}}, None))
    else:
        out.append(
            ({"addChatItemAction": {"item": {"liveChatTextMessageRenderer": _renderer(m)}, "clientId": "CKzL"}}, None)
        )
    if i % 11 == 0:
        member = {k: v for k, v in _renderer(m).items() if k != "message"}
        member["id"] = m.id + "-member"
        member["headerSubtext"] = {"runs": [{"text": "Welcome to "}, {"text": "the club"}, {"text": "!"}]}
        out.append(({"addChatItemAction": {"item": {"liveChatMembershipItemRenderer": member}}}, "membership"))
    if i % 13 == 0:
        sticker = {k: v for k, v in _renderer(m).items() if k != "message"}
        sticker["id"] = m.id + "-sticker"
        sticker["sticker"] = {"thumbnails": [{"url": "https://lh3.example/s.png"}]}
        out.append(({"addChatItemAction": {"item": {"liveChatPaidStickerRenderer": sticker}}}, "sticker"))
    if i % 17 == 0:
        out.append(
            (
                {
                    "markChatItemAsDeletedAction": {
                        "deletedStateMessage": {"runs": [{"text": "[message retracted]"}]},
                        "targetItemId": m.id + "-gone",
                    }
                },
                RETRACT,
            )
        )
    if i % 19 == 0:
        paid = {**_renderer(m), "id": m.id + "-paid"}
        del paid["message"]
        out.append(
            ({"addChatItemAction": {"item": {"liveChatPaidMessageRenderer": paid}}}, "paid message without text")
        )
    return out


def ytdlp_file(ms: Sequence[Message], live: bool = False) -> tuple[str, dict[str, int]]:
    lines, skipped = [], {}
    for i, m in enumerate(ms):
        for action, kind in ytdlp_actions(m, i):
            lines.append(ytdlp_line(action, i * 250, live))
            if kind and kind != RETRACT:
                skipped[kind] = skipped.get(kind, 0) + 1
    return "\n".join(lines) + "\n", skipped


# --- chat-downloader -----------------------------------------------------------------------------------
# chat-downloader's items that carry no viewer text, every Nth message: (N, id suffix, the item's fields, kind)
_CD_EXTRAS: tuple[tuple[int, str, dict[str, Any], str], ...] = (
    (
        11,
        "-member",
        {"message": None, "message_type": "membership_item", "header_secondary_text": "Welcome to the club!"},
        "membership",
    ),
    (
        13,
        "-sticker",
        {
            "message": None,
            "message_type": "paid_sticker",
            "money": {"amount": 30.0, "currency": "TWD", "text": "NT$30.00"},
        },
        "sticker",
    ),
    (17, "-gone", {"message": "[message retracted]", "message_type": "deleted_message"}, RETRACT),
    (23, "-empty", {"message": "", "message_type": "text_message"}, "empty message"),
)


def _cd_extras(m: Message, i: int, author: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    out = []
    for every, suffix, fields, kind in _CD_EXTRAS:
        if i % every:
            continue
        if kind == RETRACT:  # a deletion names the message it deletes
            row = {"action_type": "mark_chat_item_as_deleted", "target_message_id": m.id + suffix, **fields}
        else:
            row = {
                "action_type": "add_chat_item",
                "author": author,
                "message_id": m.id + suffix,
                "timestamp": m.us,
                **fields,
            }
        out.append((row, kind))
    return out


def cd_items(ms: Sequence[Message]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    items, skipped = [], {}
    for i, m in enumerate(ms):
        author = {
            "id": "UC" + m.user.encode().hex()[:22],
            "name": m.user,
            "images": [{"url": "https://yt4.example/a.jpg", "width": 32, "height": 32, "id": "32x32"}],
        }
        item: dict[str, Any] = {
            "action_type": "add_chat_item",
            "author": author,
            "message_id": m.id,
            "timestamp": m.us,
            "time_in_seconds": i * 0.25,
            "time_text": f"{i // 240}:{(i // 4) % 60:02d}",
            "message": m.text + (":face_with_tears_of_joy::_hello:" if m.emoji else ""),
            "message_type": "paid_message" if i % 5 == 4 else "text_message",
        }
        if m.emoji:
            item["emotes"] = [
                {
                    "id": "😂",
                    "name": ":face_with_tears_of_joy:",
                    "is_custom_emoji": False,
                    "shortcuts": [":face_with_tears_of_joy:", ":joy:"],
                    "search_terms": ["joy"],
                },
                {"id": "UCabc123/Xyz789", "name": ":_hello:", "is_custom_emoji": True, "shortcuts": [":_hello:"]},
            ]
        if i % 5 == 4:
            item["money"] = {"amount": 75.0, "currency": "TWD", "currency_symbol": "NT$", "text": "NT$75.00"}
        items.append(item)
        extra = _cd_extras(m, i, author)
        for row, kind in extra:
            items.append(row)
            if kind != RETRACT:
                skipped[kind] = skipped.get(kind, 0) + 1
    return items, skipped


def cd_csv(items: Sequence[dict[str, Any]]) -> str:
    """chat-downloader's CSV writer: nested fields flattened with '.', columns sorted."""

    def flatten(item: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
        out = {} if out is None else out
        if isinstance(item, dict):
            for key, value in item.items():
                flatten(value, f"{prefix}{key}.", out)
        elif isinstance(item, list):
            for index, value in enumerate(item):
                flatten(value, f"{prefix}{index}.", out)
        else:
            out[prefix[:-1]] = item
        return out

    rows = [flatten(item) for item in items]
    columns = sorted({key for row in rows for key in row})
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# --- pytchat -------------------------------------------------------------------------------------------
def pytchat_items(ms: Sequence[Message]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    items, skipped = [], {}
    for i, m in enumerate(ms):
        author = {
            "badgeUrl": "",
            "type": "",
            "isVerified": False,
            "isChatOwner": False,
            "isChatSponsor": False,
            "isChatModerator": False,
            "channelId": "UC" + m.user.encode().hex()[:22],
            "channelUrl": "http://www.youtube.com/channel/UC",
            "name": m.user,
            "imageUrl": "https://yt4.example/a.jpg",
        }
        ex: list[Any] = [m.text]
        if m.emoji:
            ex += [
                {"id": "😂", "txt": ":face_with_tears_of_joy:", "url": "https://yt3.example/1f602.png"},
                {"id": "Xyz789", "txt": ":_hello:", "url": "https://yt3.example/hello.png"},
            ]
        kind = "superChat" if i % 5 == 4 else "textMessage"
        items.append(
            {
                "author": author,
                "type": kind,
                "id": m.id,
                "timestamp": m.us // 1000,
                "elapsedTime": f"{i // 240}:{(i // 4) % 60:02d}",
                "datetime": "2024-05-01 12:00:00",
                "message": m.text + (":face_with_tears_of_joy::_hello:" if m.emoji else ""),
                "messageEx": ex,
                "amountValue": 75.0 if kind == "superChat" else 0.0,
                "amountString": "NT$75.00" if kind == "superChat" else "",
                "currency": "TWD",
                "bgColor": 0,
            }
        )
        if i % 11 == 0:
            items.append(
                {
                    **items[-1],
                    "type": "newSponsor",
                    "id": m.id + "-member",
                    "message": "Welcome to the club!",
                    "messageEx": ["Welcome to the club!"],
                }
            )
            skipped["membership"] = skipped.get("membership", 0) + 1
        if i % 13 == 0:
            items.append({**items[-1], "type": "superSticker", "id": m.id + "-sticker", "message": "", "messageEx": []})
            skipped["sticker"] = skipped.get("sticker", 0) + 1
    return items, skipped
