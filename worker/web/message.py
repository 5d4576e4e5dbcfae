"""A page's view as bytes (the body of ``/api/view``, the data of one Server-Sent Event), never more than
:data:`MAX_VIEW_BYTES`. Pure.

Everything in a view but two lists has a fixed worst case (64 labels × 240 points of series, label names of at
most 64 characters, 17 model tags of at most 256, the health numbers): under 300 KB even when every character
is a control character, which JSON writes as six bytes. The two lists grow with settings and input: the
channel list (``--max-channels``) and the feed (``--feed-size``, texts up to 500 characters). A view over the
limit keeps as much of each as fits, channels first (ALL and the busiest; the page needs them to navigate),
then the newest comments, and says in ``cut`` how many of each it left out.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_EVENT_BYTES", "MAX_VIEW_BYTES", "encode_view", "sse_event"]

MAX_VIEW_BYTES = 512 * 1024
_EVENT_HEAD, _EVENT_TAIL = b"data: ", b"\n\n"
MAX_EVENT_BYTES = MAX_VIEW_BYTES + len(_EVENT_HEAD) + len(_EVENT_TAIL)  # one Server-Sent Event with a view
_SEPARATOR_B = 2  # json.dumps writes ", " between list items


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _take(items: list[Any], room: int) -> tuple[list[Any], int]:
    """The leading ``items`` whose JSON fits in ``room`` bytes, and the room left."""
    kept = []
    for item in items:
        size = len(_dumps(item)) + _SEPARATOR_B
        if size > room:
            break
        kept.append(item)
        room -= size
    return kept, room


def encode_view(view: dict[str, Any], max_bytes: int = MAX_VIEW_BYTES) -> bytes:
    """``view`` as JSON (UTF-8) of at most ``max_bytes``: the channel list and the feed cut to fit when needed."""
    data = _dumps(view)
    if len(data) <= max_bytes:
        return data
    channels, feed = list(view.get("channels", [])), list(view.get("feed", []))
    cut = {"channels": len(channels), "feed": len(feed)}  # as many digits as the final counts, or more
    room = max_bytes - len(_dumps({**view, "channels": [], "feed": [], "cut": cut}))
    channels, room = _take(channels, room)
    feed, room = _take(feed, room)
    cut = {"channels": cut["channels"] - len(channels), "feed": cut["feed"] - len(feed)}
    return _dumps({**view, "channels": channels, "feed": feed, "cut": cut})


def sse_event(data: bytes) -> bytes:
    """One Server-Sent Event carrying ``data`` (JSON: one line)."""
    return _EVENT_HEAD + data + _EVENT_TAIL
