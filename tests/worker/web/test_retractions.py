"""Retractions on the dashboard's aggregation (issue 22): a deletion takes one comment back out of every count
(5/15/60 minutes, the whole stream, the totals, of its channel and of all channels) and the feed; a ban or
timeout takes out the author's earlier comments of that channel, not later ones nor another channel's; a
retraction that comes before its comment's result keeps that comment out; a malformed one is counted as such."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from worker.tools.embedded import EmbeddedRedis
from worker.web.aggregate import ALL, REMEMBERED, Aggregator
from worker.web.retracted import Ledger, Retraction

LABELS = ["轉播", "加油", "閒聊"]
NOW = 1_800_000_000_000
T0 = NOW - 30 * 60_000  # half an hour ago: inside every window


def comment(seq: int, labels: list[str], mid: str, author: str, channel: str = "c1") -> tuple[str, dict[str, str]]:
    fields = {
        "source_id": f"{T0 + seq * 1000}-0",
        "labels": json.dumps(labels, ensure_ascii=False),
        "scores": json.dumps(dict.fromkeys(LABELS, 0.5), ensure_ascii=False),
        "model": "tvl:1",
        "channel": channel,
        "id": mid,
        "author_id": author,
        "user": author,
        "text": f"text {seq}",
    }
    return f"{T0 + seq * 1000 + 5}-0", fields


def retraction(seq: int, action: str, target: str, channel: str = "c1") -> tuple[str, dict[str, str]]:
    key = "target_id" if action == "delete" else "target_author_id"
    fields = {"source_id": f"{T0 + seq * 1000}-0", "kind": "retract", "action": action, key: target, "channel": channel}
    return f"{T0 + seq * 1000 + 5}-1", fields


def counts(agg: Aggregator, channel: str = ALL) -> list[dict[str, object]]:
    """The counts over the last 60 minutes and over the whole stream (the chat is half an hour old)."""
    return [agg.heat(channel, window, NOW)["counts"] for window in ("60m", "all")]


def chat() -> Aggregator:
    agg = Aggregator()
    agg.add(*comment(1, ["轉播"], "m1", "alice"))
    agg.add(*comment(2, ["轉播", "加油"], "m2", "bob"))
    agg.add(*comment(3, ["加油"], "m3", "bob"))
    agg.add(*comment(4, ["閒聊"], "m4", "bob", channel="c2"))
    return agg


def test_a_deletion_takes_its_comment_out_of_every_count_and_the_feed() -> None:
    agg = chat()
    assert counts(agg)[-1] == {"comments": 4, "labels": {"轉播": 2, "加油": 2, "閒聊": 1}}
    agg.add(*retraction(5, "delete", "m2"))
    assert counts(agg) == [{"comments": 3, "labels": {"轉播": 1, "加油": 1, "閒聊": 1}}] * 2
    assert counts(agg, "c1") == [{"comments": 2, "labels": {"轉播": 1, "加油": 1, "閒聊": 0}}] * 2
    assert agg.channel_list(NOW)[0] == {"name": ALL, "rate": 0, "total": 3}
    assert [item.source_id for item in agg.feed(ALL, 10)] == [f"{T0 + n * 1000}-0" for n in (4, 3, 1)]
    assert (agg.retractions, agg.retracted, agg.malformed) == (1, 1, 0)
    agg.add(*retraction(6, "delete", "m2"))  # again: nothing more
    assert counts(agg)[-1]["comments"] == 3 and agg.retracted == 1


def test_a_ban_takes_the_authors_earlier_comments_of_that_channel_only() -> None:
    agg = chat()
    agg.add(*retraction(5, "ban", "bob"))
    agg.add(*comment(6, ["加油"], "m6", "bob"))  # after the ban (a timeout ended): stands
    assert counts(agg)[-1] == {"comments": 3, "labels": {"轉播": 1, "加油": 1, "閒聊": 1}}
    assert counts(agg, "c2")[-1]["comments"] == 1  # bob's comment in another channel stands
    assert [item.user for item in agg.feed("c1", 10)] == ["bob", "alice"]
    assert agg.retracted == 2


def test_a_retraction_before_its_comments_result_keeps_the_comment_out() -> None:
    """Workers publish in parallel: the retraction of a comment may be published before the comment's result."""
    agg = Aggregator()
    agg.add(*retraction(5, "delete", "m2"))
    agg.add(*retraction(6, "timeout", "bob"))
    agg.add(*comment(2, ["加油"], "m2", "carol"))
    agg.add(*comment(3, ["加油"], "m3", "bob"))
    agg.add(*comment(7, ["轉播"], "m7", "bob"))  # after the timeout
    assert counts(agg)[-1] == {"comments": 1, "labels": {"轉播": 1, "加油": 0, "閒聊": 0}}
    assert agg.retracted == 2 and agg.ingested == 3


def test_malformed_retractions_are_counted_and_change_nothing() -> None:
    agg = chat()
    agg.add(*retraction(5, "delete", ""))
    agg.add("9-0", {"kind": "retract", "action": "mute", "target_id": "m1", "source_id": "9-0"})
    agg.add("9-1", {"kind": "retract", "action": "delete", "target_id": "m1", "source_id": "no id"})
    assert counts(agg)[-1]["comments"] == 4 and (agg.malformed, agg.retractions) == (3, 0)


def test_the_ledger_forgets_the_oldest_past_its_cap() -> None:
    ledger: Ledger[int] = Ledger(cap=2)
    for n in range(3):
        assert ledger.comment((n, 0), "c", f"m{n}", "", n)
    assert len(ledger) == 2
    assert ledger.retract(Retraction((9, 0), "delete", "c", "m0")) == []  # forgotten
    assert ledger.retract(Retraction((9, 1), "delete", "c", "m2")) == [2]
    assert REMEMBERED >= 10_000


async def test_the_pages_view_drops_after_a_retraction(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis
) -> None:
    """Through the real data path: the output stream in a real Redis, a Dashboard following it, /api/view."""
    from .test_dashboard_bounds import http, now_ms, serving

    t0 = now_ms() - 60_000
    for seq, (labels, mid, author) in enumerate(
        [(["轉播"], "m1", "alice"), (["加油"], "m2", "bob"), (["加油"], "m3", "bob")]
    ):
        _id, fields = comment(seq, labels, mid, author)
        await redis_client.xadd("livetopic:topics", {**fields, "source_id": f"{t0 + seq}-0"})

    async def view(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
        async with session.get(base + "api/view?channel=c1&window=15m") as resp:
            body: dict[str, Any] = await resp.json()
            return body

    async def until_comments(session: aiohttp.ClientSession, base: str, n: int) -> dict[str, Any]:
        async with asyncio.timeout(30):
            while (body := await view(session, base))["counts"]["comments"] != n:
                await asyncio.sleep(0.05)
            return body

    async with serving(redis_server.url) as base, http() as session:
        body = await until_comments(session, base, 3)
        assert body["counts"]["labels"] == {"轉播": 1, "加油": 2, "閒聊": 0}
        await redis_client.xadd(
            "livetopic:topics",
            {
                "source_id": f"{t0 + 10}-0",
                "kind": "retract",
                "action": "ban",
                "target_author_id": "bob",
                "channel": "c1",
            },
        )
        body = await until_comments(session, base, 1)
        assert body["counts"]["labels"] == {"轉播": 1, "加油": 0, "閒聊": 0}
        assert [item["user"] for item in body["feed"]] == ["alice"]
        assert (body["health"]["retractions"], body["health"]["retracted"]) == (1, 2)
