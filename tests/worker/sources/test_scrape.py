"""``scrape`` through chat-downloader against responses written by hand in YouTube's shape, mounted on the
library's ``requests.Session``: messages land once; a forced disconnect reconnects without duplicates; a library
failure names the library, its version and the fallback. No test touches the network."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import redis.asyncio as aioredis

from worker.errors import SourceError
from worker.sources.feed import Feed
from worker.sources.status import Status
from worker.streams.keys import seen_key
from worker.streams.producer import Dedupe, StreamProducer
from worker.streams.retry import Backoff

from ...chatshapes import Message, expected_text, messages, ytdlp_actions

requests = pytest.importorskip("requests", reason="the [scrape] extra is not installed")
pytest.importorskip("chat_downloader", reason="the [scrape] extra is not installed")
from worker.sources.scrape import ChatDownloaderSource, channel_of, scrape  # noqa: E402

VIDEO = "Vid_0123456"
URL = f"https://www.youtube.com/watch?v={VIDEO}"
STREAM = "livetopic:comments"


def _watch_page() -> str:
    initial = {"contents": {"twoColumnWatchNextResults": {"conversationBar": {"liveChatRenderer": {"header": {
        "liveChatHeaderRenderer": {"viewSelector": {"sortFilterSubMenuRenderer": {"subMenuItems": [
            {"title": "Top chat", "continuation": {"reloadContinuationData": {"continuation": "TOP"}}},
            {"title": "Live chat", "continuation": {"reloadContinuationData": {"continuation": "LIVE"}}}]}}}}}}}}}
    player = {"playabilityStatus": {"status": "OK"}, "videoDetails": {
        "videoId": VIDEO, "title": "直播測試", "author": "頻道", "channelId": "UCchannel", "isLive": True,
        "isLiveContent": True}, "microformat": {"playerMicroformatRenderer": {"liveBroadcastDetails": {
            "isLiveNow": True, "startTimestamp": "2024-05-01T12:00:00+00:00"}}}}
    cfg = {"INNERTUBE_API_KEY": "KEY", "INNERTUBE_CLIENT_VERSION": "2.20240501", "INNERTUBE_CONTEXT_CLIENT_NAME": 1,
           "DATASYNC_ID": "||", "INNERTUBE_CONTEXT": {"client": {"clientName": "WEB", "clientVersion": "2.20240501"}}}
    return (f"<html><head><script>ytcfg.set({json.dumps(cfg)});</script></head><body>"
            f"<script>var ytInitialPlayerResponse = {json.dumps(player, ensure_ascii=False)};</script>"
            f"<script>var ytInitialData = {json.dumps(initial, ensure_ascii=False)};</script></body></html>")


def _chat(ms: list[Message], start: int, following: str | None) -> dict[str, Any]:
    actions = [action for i, m in enumerate(ms, start) for action, _kind in ytdlp_actions(m, i)]
    continuation: dict[str, Any] = {"actions": actions}
    if following:
        continuation["continuations"] = [{"invalidationContinuationData": {"continuation": following,
                                                                           "timeoutMs": 5}}]
    return {"responseContext": {}, "continuationContents": {"liveChatContinuation": continuation}}


class Recorded(requests.adapters.BaseAdapter):
    """YouTube's watch page, the live chat page and get_live_chat replies, by continuation; a continuation mapped
    to an exception raises it (the connection dropping)."""

    def __init__(self, pages: dict[str, Any], later: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.pages, self.later, self.calls = pages, later or {}, []

    def send(self, request: Any, **kwargs: Any) -> Any:
        parsed = urlparse(request.url)
        if parsed.path == "/watch":
            key = "watch"
        elif parsed.path == "/live_chat":
            key = parse_qs(parsed.query)["continuation"][0]
        else:
            key = json.loads(request.body)["continuation"]
        self.calls.append(key)
        page = self.pages.get(key)
        if isinstance(page, Exception):
            self.pages.update(self.later)  # what the site serves after the drop
            raise page
        if key == "watch":
            body = _watch_page()
        elif parsed.path == "/live_chat":
            body = f"<script>window[\"ytInitialData\"] = {json.dumps(page, ensure_ascii=False)};</script>"
        else:
            body = json.dumps(page, ensure_ascii=False)
        response = requests.Response()
        response.status_code, response.url, response.request = 200, request.url, request
        response._content, response.encoding = body.encode(), "utf-8"
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        return response

    def close(self) -> None:
        pass


async def _run(redis_client: aioredis.Redis, pages: dict[str, Any],
               later: dict[str, Any] | None = None) -> tuple[Status, Recorded]:
    adapter = Recorded(pages, later)
    source = ChatDownloaderSource(URL, prepare_session=lambda s: s.mount("https://", adapter), max_attempts=1)
    status = Status("scrape", enabled=False)
    producer = StreamProducer(redis_client, STREAM, dedupe=Dedupe(seen_key(STREAM), 600))
    await asyncio.wait_for(scrape(source, Feed(producer, status), asyncio.Event(),
                                  backoff=Backoff(base_s=0.01, cap_s=0.02)), timeout=60)
    return status, adapter


async def test_messages_land_once_across_a_dropped_connection(redis_client: aioredis.Redis) -> None:
    ms = messages(["加油", "這球好扯 😂", "gg wp", "主播好帥"], 90, "yt")
    first = {"LIVE": _chat(ms[:30], 0, "C1"), "C1": _chat(ms[30:50], 30, "C2"),
             "C2": requests.ConnectionError("connection reset by peer")}
    # after the reconnect the live chat page shows the recent messages again (20..49), then new ones
    second = {"LIVE": _chat(ms[20:60], 20, "C3"), "C3": _chat(ms[60:], 60, None)}
    status, adapter = await _run(redis_client, first, second)
    assert adapter.calls == ["watch", "LIVE", "C1", "C2", "watch", "LIVE", "C3"]
    rows = await redis_client.xrange(STREAM)
    got = [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in rows]
    assert [g["id"] for g in got] == [m.id for m in ms]  # each once, in order
    assert [g["text"] for g in got] == [expected_text(m) for m in ms]
    assert {g["channel"] for g in got} == {VIDEO} and got[0]["user"] == ms[0].user
    assert status.reconnects == 1 and status.duplicates == 30 and status.pushed == len(ms)
    # items without text are counted as served: those of 20..49 twice (memberships 22, 33, 44; stickers 26, 39;
    # the deletion at 34)
    assert (status.skipped["membership"], status.skipped["sticker"], status.skipped["deleted"]) == (9 + 3, 7 + 2, 6 + 1)


async def test_a_restart_pushes_nothing_twice(redis_client: aioredis.Redis) -> None:
    ms = messages(["一", "二"], 40, "again")
    pages = {"LIVE": _chat(ms[:25], 0, "C1"), "C1": _chat(ms[25:], 25, None)}
    await _run(redis_client, pages)
    status, _ = await _run(redis_client, pages)  # the same chat again: a restarted scrape
    assert status.pushed == 0 and status.duplicates == len(ms)
    assert await redis_client.xlen(STREAM) == len(ms)


async def test_a_library_failure_names_library_version_and_fallback(redis_client: aioredis.Redis) -> None:
    pages = {"LIVE": {"unexpected": "shape"}}

    class Broken(Recorded):
        def send(self, request: Any, **kwargs: Any) -> Any:
            if urlparse(request.url).path == "/watch":
                response = super().send(request, **kwargs)
                response._content = b"<html>YouTube changed its page</html>"
                return response
            return super().send(request, **kwargs)

    source = ChatDownloaderSource(URL, prepare_session=lambda s: s.mount("https://", Broken(pages)), max_attempts=1)
    producer = StreamProducer(redis_client, STREAM)
    with pytest.raises(SourceError, match=r"chat-downloader 0\.\d+\.\d+ failed: ParsingError.*yt-dlp.*push --follow"):
        await scrape(source, Feed(producer, Status("scrape", enabled=False)), asyncio.Event())


def test_channel_of_urls() -> None:
    assert channel_of("https://www.youtube.com/watch?v=abc_DEF-123&t=5") == "abc_DEF-123"
    assert channel_of("youtu.be/abc") == "abc" and channel_of("https://www.youtube.com/live/xyz") == "xyz"
    assert channel_of("https://www.twitch.tv/somechannel") == "somechannel"
