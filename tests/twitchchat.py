"""A realistic Twitch chat, as IRC lines (plain, highlighted and bits messages, subscriptions with and without a
message, announcements, gifts, deletions, timeouts and bans, room state), with what livetopic must make of it
(see tests/livechat.py). Standard library only; the chat text is the caller's or tests/livechat.py's."""

from __future__ import annotations

from .livechat import T0_US, TEXTS, Chat, iso

__all__ = ["ROOM", "clearchat", "clearmsg", "privmsg", "twitch_chat"]

# --- Twitch ----------------------------------------------------------------------------------------------
ROOM = "1234"
_TW_BADGES = {
    0: ("broadcaster/1", "broadcaster"),
    1: ("moderator/1", "moderator"),
    2: ("subscriber/12", "subscriber"),
    3: ("subscriber/3,bits/100", "subscriber"),
    4: ("vip/1", "vip"),
    5: ("bits/1000", ""),
}


def _tw_user(k: int) -> tuple[str, str, str]:
    return f"Viewer_{k}", f"viewer_{k}", str(7000 + k)


def _tags(**tags: str) -> str:
    return "@" + ";".join(f"{key.replace('_', '-')}={value}" for key, value in tags.items())


def privmsg(channel: str, message_id: str, user_id: str, login: str, text: str, sent_ms: int) -> str:
    """A viewer's plain chat message, tagged as Twitch tags it."""
    tags = _tags(
        badge_info="",
        badges="",
        color="#1E90FF",
        display_name=login,
        emotes="",
        first_msg="0",
        flags="",
        id=message_id,
        mod="0",
        room_id=ROOM,
        subscriber="0",
        tmi_sent_ts=str(sent_ms),
        turbo="0",
        user_id=user_id,
        user_type="",
    )
    return f"{tags} :{login}!{login}@{login}.tmi.twitch.tv PRIVMSG #{channel} :{text}"


def clearmsg(channel: str, message_id: str, login: str, sent_ms: int) -> str:
    """A moderator deleted the message ``message_id`` (of ``login``)."""
    tags = _tags(login=login, room_id=ROOM, target_msg_id=message_id, tmi_sent_ts=str(sent_ms))
    return f"{tags} :tmi.twitch.tv CLEARMSG #{channel} :whatever it said"


def clearchat(channel: str, user_id: str, login: str, sent_ms: int, timeout_s: int | None = None) -> str:
    """A moderator banned (or, with ``timeout_s``, timed out) the user ``user_id``."""
    duration = {"ban_duration": str(timeout_s)} if timeout_s is not None else {}
    tags = _tags(**duration, room_id=ROOM, target_user_id=user_id, tmi_sent_ts=str(sent_ms))
    return f"{tags} :tmi.twitch.tv CLEARCHAT #{channel} :{login}"


def _tw_message(chat: Chat, i: int, text: str, prefix: str, channel: str) -> tuple[str, str]:
    k, ms, mid = i % 11, T0_US // 1000 + i * 250, f"{prefix}-{i:05d}-4e2f"
    display, login, uid = _tw_user(k)
    badges, roles = _TW_BADGES.get(k, ("", ""))
    tags = {
        "badge_info": "subscriber/12" if k in (2, 3) else "",
        "badges": badges,
        "color": "#1E90FF",
        "display_name": display,
        "emotes": "",
        "first_msg": "0",
        "flags": "",
        "id": mid,
        "mod": "1" if k == 1 else "0",
        "returning_chatter": "0",
        "room_id": ROOM,
        "subscriber": "1" if k in (2, 3) else "0",
        "tmi_sent_ts": str(ms),
        "turbo": "0",
        "user_id": uid,
        "user_type": "mod" if k == 1 else "",
    }
    fields = {
        "text": text,
        "user": display,
        "author_id": uid,
        "id": mid,
        "ts": iso(ms * 1000),
        "message_type": "text_message",
        "channel_id": ROOM,
    }
    if i % 6 == 5:
        tags["bits"] = "100"
        fields.update(text="cheer100 " + text, bits="100")
    if i % 8 == 3:
        tags = {"msg_id": "highlighted-message", **tags}
        fields["message_type"] = "highlighted_message"
    if roles:
        fields["badges"] = roles
    chat.lines.append(f"{_tags(**tags)} :{login}!{login}@{login}.tmi.twitch.tv PRIVMSG #{channel} :{fields['text']}")
    chat.comments.append(fields)
    return mid, uid


def _notice(
    chat: Chat, kind: str, i: int, k: int, prefix: str, channel: str, message: str | None, **params: str
) -> dict[str, str]:
    display, login, uid = _tw_user(k)
    ms, mid = T0_US // 1000 + i * 250 + 100, f"{prefix}-{i:05d}-{kind}"
    tags = {
        "badge_info": "",
        "badges": "",
        "color": "",
        "display_name": display,
        "emotes": "",
        "flags": "",
        "id": mid,
        "login": login,
        "mod": "0",
        "msg_id": kind,
        **params,
        "room_id": ROOM,
        "subscriber": "1",
        "system_msg": f"{display}\\sdid\\s{kind}.",
        "tmi_sent_ts": str(ms),
        "user_id": uid,
        "user_type": "",
    }
    trailing = f" :{message}" if message is not None else ""
    chat.lines.append(f"{_tags(**tags)} :tmi.twitch.tv USERNOTICE #{channel}{trailing}")
    # subscriber=1: the notice's author subscribes (chat-downloader reads the tag as a role)
    return {
        "user": display,
        "author_id": uid,
        "id": mid,
        "ts": iso(ms * 1000),
        "channel_id": ROOM,
        "badges": "subscriber",
    }


def _tw_extras(chat: Chat, i: int, ids: list[str], uid: str, prefix: str, channel: str) -> None:
    k = i % 11
    if i % 10 == 2:
        fields = _notice(
            chat,
            "resub",
            i,
            k,
            prefix,
            channel,
            f"第{i}個月 {TEXTS[i % len(TEXTS)]}",
            msg_param_cumulative_months="5",
            msg_param_sub_plan="1000",
        )
        chat.comments.append({"text": f"第{i}個月 {TEXTS[i % len(TEXTS)]}", "message_type": "resubscription", **fields})
    if i % 10 == 7:
        _notice(chat, "sub", i, k, prefix, channel, None, msg_param_sub_plan="Prime")
        chat.skipped["subscription"] += 1
    if i % 15 == 4:
        fields = _notice(chat, "announcement", i, 0, prefix, channel, f"公告 {i}: 九點抽獎", msg_param_color="PRIMARY")
        chat.comments.append({"text": f"公告 {i}: 九點抽獎", "message_type": "announcement", **fields})
    if i % 20 == 9:
        _notice(chat, "subgift", i, k, prefix, channel, None, msg_param_recipient_id="9999")
        chat.skipped["subscription gift"] += 1
    ms = T0_US // 1000 + i * 250 + 200
    if i % 9 == 8:  # a moderator deletes the message before this one
        login = _tw_user((i - 1) % 11)[1]
        chat.lines.append(clearmsg(channel, ids[-2], login, ms))
        chat.retractions.append(
            {
                "kind": "retract",
                "action": "delete",
                "target_id": ids[-2],
                "id": f"delete:{ids[-2]}",
                "ts": iso(ms * 1000),
                "target_user": login,
                "channel_id": ROOM,
            }
        )
    if i % 25 == 24 or i % 40 == 39:  # a timeout, or a ban, of this message's author
        timeout = i % 25 == 24
        chat.lines.append(clearchat(channel, uid, _tw_user(k)[1], ms, 600 if timeout else None))
        action = "timeout" if timeout else "ban"
        chat.retractions.append(
            {
                "kind": "retract",
                "action": action,
                "target_author_id": uid,
                "id": f"{action}:{uid}:{ms * 1000}",
                "ts": iso(ms * 1000),
                "target_user": _tw_user(k)[1],
                "channel_id": ROOM,
            }
        )
    if i % 50 == 49:
        chat.lines.append(f"@room-id={ROOM};tmi-sent-ts={ms} :tmi.twitch.tv CLEARCHAT #{channel}")
        chat.skipped["chat cleared"] += 1


def twitch_chat(n: int, prefix: str = "tw", channel: str = "somechannel", texts: list[str] | None = None) -> Chat:
    """``n`` chat messages (and what comes between them) as Twitch IRC lines (without CRLF), in order."""
    chat, ids = Chat(), []
    chat.lines.append(
        f"@emote-only=0;followers-only=-1;r9k=0;room-id={ROOM};slow=0;subs-only=0 :tmi.twitch.tv ROOMSTATE #{channel}"
    )
    chat.lines.append(f"@msg-id=slow_on :tmi.twitch.tv NOTICE #{channel} :This room is now in slow mode.")
    chat.skipped["system message"] += 2
    for i in range(n):
        mid, uid = _tw_message(chat, i, (texts or TEXTS)[i % len(texts or TEXTS)], prefix, channel)
        ids.append(mid)
        _tw_extras(chat, i, ids, uid, prefix, channel)
    return chat
