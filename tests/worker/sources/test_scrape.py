"""``scrape`` through chat-downloader against local stand-ins for a live chat: YouTube's pages (canned, mounted
on the library's ``requests.Session``) and a fake Twitch IRC server on localhost. Messages, deletions and bans
land exactly once, across a dropped connection and a restart; a network failure is named and given up on; a
URL that is not a chat is refused at once; chat-downloader's log lines come once, under its own name; a hostile
item is skipped and counted. No test touches the network."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from typing import Any

import pytest
import redis.asyncio as aioredis

from worker.errors import SourceError
from worker.sources.feed import Feed
from worker.sources.status import Status
from worker.streams.keys import seen_key
from worker.streams.producer import Dedupe, StreamProducer
from worker.streams.retry import Backoff

from ...chatwriters import (
    TWITCH_URL,
    VIDEO,
    YOUTUBE_URL,
    FakeTwitchIRC,
    TwitchGraphQL,
    YouTubeSite,
    pages_of,
    scrape_threads_joined,
)
from ...cli.helpers import livetopic
from ...livechat import Chat, youtube_chat
from ...twitchchat import twitch_chat

requests = pytest.importorskip("requests", reason="the [scrape] extra is not installed")
from worker.sources.chatnet import check_url, own_library_logging  # noqa: E402
from worker.sources.scrape import ChatDownloaderSource, GiveUp, channel_of, scrape  # noqa: E402

STREAM = "livetopic:comments"


async def _entries(redis_client: aioredis.Redis) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in f.items()} for _id, f in await redis_client.xrange(STREAM)]


def _producer(redis_client: aioredis.Redis) -> StreamProducer:
    return StreamProducer(redis_client, STREAM, dedupe=Dedupe(seen_key(STREAM), 600))


async def _run(redis_client: aioredis.Redis, source: Any, **kwargs: Any) -> Status:
    status = Status("scrape", enabled=False)
    await asyncio.wait_for(
        scrape(
            source,
            Feed(_producer(redis_client), status),
            asyncio.Event(),
            backoff=Backoff(base_s=0.01, cap_s=0.02),
            **kwargs,
        ),
        timeout=120,
    )
    return status


def _youtube(adapter: YouTubeSite) -> ChatDownloaderSource:
    return ChatDownloaderSource(YOUTUBE_URL, prepare_session=lambda s: s.mount("https://", adapter))


def _check_stream(entries: list[dict[str, str]], chat: Chat, channel: str) -> None:
    """Every comment and every retraction of ``chat`` exactly once, in order, with the channel."""
    comments = [e for e in entries if "text" in e]
    assert [c["id"] for c in comments] == [c["id"] for c in chat.comments]
    assert all(got == {**want, "channel": channel} for got, want in zip(comments, chat.comments, strict=True))
    retractions = [e for e in entries if e.get("kind") == "retract"]
    assert len(entries) == len(comments) + len(retractions)
    targets = [(r["action"], r.get("target_id") or r["target_author_id"]) for r in retractions]
    assert targets == [(r["action"], r.get("target_id") or r["target_author_id"]) for r in chat.retractions]
    assert all(r["channel"] == channel and "text" not in r for r in retractions)


async def test_youtube_messages_deletions_and_bans_land_once_across_a_dropped_connection(
    redis_client: aioredis.Redis,
) -> None:
    chat = youtube_chat(90)
    actions = chat.actions
    cut = next(i for i, a in enumerate(actions) if "markChatItemsByAuthorAsDeletedAction" in a) + 3
    first = {**pages_of(actions[:cut], per_page=20, then="DROP"), "DROP": requests.ConnectionError("reset by peer")}
    # after the reconnect the live chat page shows the recent actions again (the ban among them), then new ones
    adapter = YouTubeSite(first, later=pages_of(actions[cut - 25 :], per_page=30))
    status = await _run(redis_client, _youtube(adapter))
    assert adapter.calls.count("watch") == 2 and "DROP" in adapter.calls and status.reconnects == 1
    _check_stream(await _entries(redis_client), chat, VIDEO)
    assert status.pushed == len(chat.comments) and status.retractions == len(chat.retractions)
    assert status.duplicates > 0 and status.unreadable == 0
    assert status.skipped["system message"] == 1 and status.skipped["ticker"] >= chat.skipped["ticker"]


async def test_a_restart_pushes_nothing_twice(redis_client: aioredis.Redis) -> None:
    chat = youtube_chat(40, "again")
    await _run(redis_client, _youtube(YouTubeSite(pages_of(chat.actions))))
    status = await _run(redis_client, _youtube(YouTubeSite(pages_of(chat.actions))))  # the same chat again
    assert status.pushed == status.retractions == 0
    assert status.duplicates == len(chat.comments) + len(chat.retractions)
    _check_stream(await _entries(redis_client), chat, VIDEO)


async def test_twitch_from_a_local_irc_server_lands_once_across_a_reconnect(redis_client: aioredis.Redis) -> None:
    """Highlighted, bits, resubscription and announcement messages, deletions, timeouts and bans, from a fake
    Twitch IRC server; it drops the first connection midway, and the second one sends some lines again."""
    chat = twitch_chat(80)
    half = len(chat.lines) // 2
    server = FakeTwitchIRC([chat.lines[:half], chat.lines[half - 20 :]])
    source = ChatDownloaderSource(
        TWITCH_URL, prepare_session=lambda s: s.mount("https://", TwitchGraphQL()), twitch_irc=server.address
    )
    status = Status("scrape", enabled=False)
    stop = asyncio.Event()
    with scrape_threads_joined():
        task = asyncio.create_task(scrape(source, Feed(_producer(redis_client), status), stop))
        try:
            while status.pushed + status.retractions < half // 2:  # the first connection's lines are in
                await asyncio.sleep(0.05)
            for conn in list(server._conns):  # the connection drops: the library reconnects
                conn.shutdown(socket.SHUT_RDWR)
            expected = len(chat.comments) + len(chat.retractions)
            while status.pushed + status.retractions < expected:
                assert not task.done(), task
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(task, 30)
        finally:
            server.close()
    assert len(server.joined) == 2 and "JOIN #somechannel" in server.joined[0]
    _check_stream(await _entries(redis_client), chat, "somechannel")
    assert status.duplicates > 0 and status.unreadable == 0  # the lines sent again landed once
    assert status.skipped["subscription"] >= chat.skipped["subscription"]


class _NoNetwork(requests.adapters.BaseAdapter):
    """What requests raises when the name does not resolve (the cause chained as urllib3 and socket do)."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        cause = socket.gaierror(-2, "Name or service not known")
        try:
            raise cause
        except socket.gaierror as exc:
            raise requests.ConnectionError(
                "HTTPSConnectionPool(host='www.youtube.com', port=443): Max retries exceeded", request=request
            ) from exc

    def close(self) -> None:
        pass


async def test_a_network_failure_is_named_and_given_up(
    redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    source = _youtube(_NoNetwork())  # type: ignore[arg-type]
    with pytest.raises(
        SourceError,
        match=r"giving up after 4 failed attempts .*--max-retries 3.*: cannot resolve "
        r"www\.youtube\.com \(no network",
    ):
        await _run(redis_client, source, give_up=GiveUp(max_retries=3))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all("cannot resolve www.youtube.com" in r.getMessage() for r in warnings)
    assert all(r.name == "worker.sources.scrape" for r in warnings)
    assert "the site may have changed" not in caplog.text


async def test_stopped_before_it_ever_connected_is_an_error(redis_client: aioredis.Redis) -> None:
    stop = asyncio.Event()
    status = Status("scrape", enabled=False)
    task = asyncio.create_task(
        scrape(
            _youtube(_NoNetwork()),
            Feed(_producer(redis_client), status),
            stop,  # type: ignore[arg-type]
            backoff=Backoff(base_s=5.0, cap_s=5.0),
        )
    )
    while status.reconnects < 1:
        await asyncio.sleep(0.02)
    stop.set()  # Ctrl-C while it waits to reconnect
    with pytest.raises(SourceError, match=r"stopped before ever connecting to .*last error: cannot resolve"):
        await asyncio.wait_for(task, 30)


class _Hostile:
    """A stand-in for the library that yields a hostile item between good ones."""

    name, url, connected, items = "chat-downloader", YOUTUBE_URL, False, 0

    def open(self) -> tuple[str, Any]:
        self.connected = True
        good = {"message_type": "text_message", "message": "好球", "author": {"name": "u"}}
        hostile = [{**good, "message_id": "x2", "timestamp": 1e30}, ["not", "an", "item"]]
        return "chat", iter([{**good, "message_id": "x1"}, *hostile, {**good, "message_id": "x3"}])

    @staticmethod
    def dropped(exc: BaseException) -> bool:
        return False

    def convert(self, item: Any) -> Any:
        return ChatDownloaderSource.convert(self, item)  # type: ignore[arg-type]


async def test_a_hostile_item_is_skipped_with_a_warning(
    redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    status = await _run(redis_client, _Hostile())
    assert [e["id"] for e in await _entries(redis_client)] == ["x1", "x3"]
    assert status.unreadable == 2
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"{YOUTUBE_URL} item 2: cannot convert the row (OverflowError" in m for m in warned), warned
    assert any(f"{YOUTUBE_URL} item 3: expected a JSON object, got list" in m for m in warned), warned


def test_the_library_logs_once_under_its_own_name(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from chat_downloader.debugging import log

    own_library_logging()
    with caplog.at_level(logging.INFO):
        logging.getLogger("chat_downloader").setLevel(logging.NOTSET)
        log("warning", "Retry #1 (sleep for 0s).")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("chat_downloader", "Retry #1 (sleep for 0s).")]
    assert "[WARNING]" not in capsys.readouterr().err  # the library's own handler is gone


def test_urls_are_checked_before_anything() -> None:
    assert check_url("youtube.com/watch?v=dQw4w9WgXcQ") == "https://youtube.com/watch?v=dQw4w9WgXcQ"
    for url in (
        "https://youtu.be/dQw4w9WgXcQ",
        "https://www.youtube.com/@someone/live",
        TWITCH_URL,
        "https://www.twitch.tv/videos/123456",
    ):
        assert check_url(url) == url
    for url in (
        "not a url",
        "https://example.com/foo",
        "https://example.com/?u=https://www.twitch.tv/x",
        "https://www.youtube.com/",
        "ftp://www.youtube.com/watch?v=dQw4w9WgXcQ",
    ):
        with pytest.raises(SourceError, match=r"not a YouTube or Twitch chat URL.*Accepted: .*twitch\.tv/CHANNEL"):
            check_url(url)
    done = livetopic("scrape", "https://example.com/foo", timeout_s=60)
    assert done.returncode == 2 and done.stderr.startswith("livetopic: error: not a YouTube or Twitch chat URL")
    assert "redis" not in done.stderr  # refused before anything was started


async def test_a_library_failure_names_library_version_and_fallback(redis_client: aioredis.Redis) -> None:
    class Broken(YouTubeSite):
        def send(self, request: Any, **kwargs: Any) -> Any:
            response = super().send(request, **kwargs)
            response._content = b"<html>YouTube changed its page</html>"
            return response

    with pytest.raises(SourceError, match=r"chat-downloader 0\.\d+\.\d+ failed: ParsingError.*yt-dlp.*push --follow"):
        await _run(redis_client, _youtube(Broken({})))


def test_channel_of_urls() -> None:
    assert channel_of("https://www.youtube.com/watch?v=abc_DEF-123&t=5") == "abc_DEF-123"
    assert channel_of("youtu.be/abc") == "abc" and channel_of("https://www.youtube.com/live/xyz") == "xyz"
    assert channel_of("https://www.twitch.tv/somechannel") == "somechannel"


async def test_what_the_site_says_about_the_url_is_said_as_such(redis_client: aioredis.Redis) -> None:
    class Gone(YouTubeSite):
        def send(self, request: Any, **kwargs: Any) -> Any:
            response = super().send(request, **kwargs)
            player = {
                "playabilityStatus": {
                    "status": "ERROR",
                    "reason": "Video unavailable",
                    "errorScreen": {"playerErrorMessageRenderer": {"reason": {"simpleText": "Video unavailable"}}},
                }
            }
            response._content = (
                f"<script>var ytInitialPlayerResponse = {json.dumps(player)};</script>"
                '<script>var ytInitialData = {"contents": {}};</script>'
            ).encode()
            return response

    with pytest.raises(SourceError, match=rf"^{re.escape(YOUTUBE_URL)}: Video unavailable\. \(VideoUnavailable\)$"):
        await _run(redis_client, _youtube(Gone({})))
