"""A view as bytes: unchanged when it fits; else the channel list and then the feed cut to fit, in order, with
the counts of what was left out."""

from __future__ import annotations

import json

from worker.web.message import MAX_EVENT_BYTES, MAX_VIEW_BYTES, encode_view, sse_event


def view(channels: int, feed: int, text: str) -> dict[str, object]:
    return {
        "now": 1,
        "channel": "",
        "labels": ["a"],
        "series": {"comments": [1.5] * 240},
        "channels": [{"name": f"c{i}" + text, "rate": i, "total": i} for i in range(channels)],
        "feed": [{"id": f"{i}-0", "text": text} for i in range(feed)],
        "health": {"redis": True},
    }


def test_a_view_that_fits_is_plain_json() -> None:
    small = view(3, 5, "加油")
    assert encode_view(small) == json.dumps(small, ensure_ascii=False).encode()
    assert sse_event(b"{}") == b"data: {}\n\n" and MAX_EVENT_BYTES == MAX_VIEW_BYTES + 8


def test_the_channel_list_then_the_feed_are_cut_to_fit() -> None:
    big = view(60, 30, "\x01" * 1_000)  # six bytes each in JSON: 60 × 6 KB of channels, 30 × 6 KB of feed
    assert len(json.dumps(big, ensure_ascii=False).encode()) > 500_000
    data = encode_view(big, 400_000)
    assert 390_000 < len(data) <= 400_000
    got = json.loads(data)
    assert got["channels"] == big["channels"][: len(got["channels"])]  # the first ones (ALL, the busiest)
    assert got["feed"] == big["feed"][: len(got["feed"])]  # the newest
    assert got["cut"] == {"channels": 60 - len(got["channels"]), "feed": 30 - len(got["feed"])}
    assert len(got["channels"]) == 60 and 0 < len(got["feed"]) < 30  # channels first
    tight = json.loads(encode_view(big, 200_000))
    assert tight["feed"] == [] and 0 < len(tight["channels"]) < 60 and tight["series"] == big["series"]
