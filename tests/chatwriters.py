"""The scrapers' own code, run offline, writing the files livetopic must read: chat-downloader (its YouTube and
Twitch parsers and its ``ContinuousWriter``, through ``get_chat(output=…)``) and yt-dlp (its
``YoutubeLiveChatFD``), fed the raw chats of tests/livechat.py and tests/twitchchat.py: a ``requests`` adapter
mounted on chat-downloader's session (YouTube's watch page, live chat page and get_live_chat replies), a yt-dlp
request handler, and tests/faketwitch.py (Twitch's IRC and GraphQL on loopback). Nothing reaches the network."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from .faketwitch import FakeTwitch
from .livechat import continuation

requests = pytest.importorskip("requests", reason="the [scrape] extra is not installed")
pytest.importorskip("chat_downloader", reason="the [scrape] extra is not installed")

VIDEO = "Vid_0123456"
YOUTUBE_URL = f"https://www.youtube.com/watch?v={VIDEO}"
TWITCH_CHANNEL = "somechannel"
TWITCH_URL = f"https://www.twitch.tv/{TWITCH_CHANNEL}"


def watch_page(video: str = VIDEO, replay: bool = False) -> str:
    """YouTube's watch page, as much of it as chat-downloader and yt-dlp read."""
    first = "REPLAY" if replay else "LIVE"
    initial = {
        "contents": {
            "twoColumnWatchNextResults": {
                "conversationBar": {
                    "liveChatRenderer": {
                        "continuations": [{"reloadContinuationData": {"continuation": first}}],
                        "header": {
                            "liveChatHeaderRenderer": {
                                "viewSelector": {
                                    "sortFilterSubMenuRenderer": {
                                        "subMenuItems": [
                                            {
                                                "title": "Top chat",
                                                "continuation": {"reloadContinuationData": {"continuation": "TOP"}},
                                            },
                                            {
                                                "title": "Live chat",
                                                "continuation": {"reloadContinuationData": {"continuation": first}},
                                            },
                                        ]
                                    }
                                }
                            }
                        },
                        "isReplay": replay,
                    }
                }
            }
        }
    }
    player = {
        "playabilityStatus": {"status": "OK"},
        "videoDetails": {
            "videoId": video,
            "title": "直播測試",
            "author": "頻道",
            "channelId": "UCchannel",
            "isLive": not replay,
            "isLiveContent": True,
            "lengthSeconds": "3600" if replay else "0",
        },
        "microformat": {
            "playerMicroformatRenderer": {
                "liveBroadcastDetails": {"isLiveNow": not replay, "startTimestamp": "2024-05-01T12:00:00+00:00"}
            }
        },
    }
    cfg = {
        "INNERTUBE_API_KEY": "KEY",
        "INNERTUBE_CLIENT_VERSION": "2.20240501",
        "INNERTUBE_CONTEXT_CLIENT_NAME": 1,
        "DATASYNC_ID": "||",
        "INNERTUBE_CONTEXT": {"client": {"clientName": "WEB", "clientVersion": "2.20240501"}},
    }
    return (
        f"<html><head><script>ytcfg.set({json.dumps(cfg)});</script></head><body>"
        f"<script>var ytInitialPlayerResponse = {json.dumps(player, ensure_ascii=False)};</script>"
        f"<script>var ytInitialData = {json.dumps(initial, ensure_ascii=False)};</script></body></html>"
    )


def pages_of(
    actions: list[dict[str, Any]],
    per_page: int = 40,
    replay: bool = False,
    first: str = "LIVE",
    then: str | None = None,
) -> dict[str, Any]:
    """Continuation replies holding ``actions`` in order, ``per_page`` a reply, chained from ``first``; the last
    one continues to ``then`` (None: the chat ends there)."""
    pages: dict[str, Any] = {}
    chunks = [actions[i : i + per_page] for i in range(0, len(actions), per_page)] or [[]]
    for n, chunk in enumerate(chunks):
        key = first if n == 0 else f"{first}{n}"
        following = f"{first}{n + 1}" if n + 1 < len(chunks) else then
        pages[key] = continuation(chunk, following, replay)
    return pages


class YouTubeSite(requests.adapters.BaseAdapter):
    """YouTube as chat-downloader fetches it: the watch page, the live chat page and get_live_chat replies, by
    continuation. A continuation mapped to an exception raises it (the connection dropping); ``later`` is what
    the site serves after that."""

    def __init__(self, pages: dict[str, Any], later: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.pages, self.later, self.calls = pages, later or {}, []

    def send(self, request: Any, **kwargs: Any) -> Any:
        parsed = urlparse(request.url)
        if parsed.path == "/watch":
            key = "watch"
        elif parsed.path in ("/live_chat", "/live_chat_replay"):
            key = parse_qs(parsed.query)["continuation"][0]
        else:
            key = json.loads(request.body)["continuation"]
        self.calls.append(key)
        page = self.pages.get(key)
        if isinstance(page, Exception):
            self.pages.update(self.later)
            raise page
        if key == "watch":
            body = watch_page()
        elif parsed.path.startswith("/live_chat"):
            body = f'<script>window["ytInitialData"] = {json.dumps(page, ensure_ascii=False)};</script>'
        else:
            body = json.dumps(page, ensure_ascii=False)
        response = requests.Response()
        response.status_code, response.url, response.request = 200, request.url, request
        response._content, response.encoding = body.encode(), "utf-8"
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        return response

    def close(self) -> None:
        pass


def downloader_for(site: Any, adapter: Any) -> Any:
    """A chat-downloader whose ``site`` session fetches through ``adapter``."""
    from chat_downloader import ChatDownloader

    downloader = ChatDownloader()
    downloader.create_session(site).session.mount("https://", adapter)
    return downloader


def write_youtube(actions: list[dict[str, Any]], path: Path) -> None:
    """chat-downloader reads a live YouTube chat of ``actions`` and writes ``path`` (its format from the suffix)."""
    from chat_downloader.sites import YouTubeChatDownloader

    downloader = downloader_for(YouTubeChatDownloader, YouTubeSite(pages_of(actions)))
    chat = downloader.get_chat(
        YOUTUBE_URL, output=str(path), message_groups=["all"], max_attempts=1, interruptible_retry=False
    )
    for _ in chat:
        pass
    downloader.close()


def write_twitch(lines: list[str], path: Path, items: int) -> None:
    """chat-downloader reads ``lines`` from a fake Twitch chat and writes ``path`` (its ``items`` first)."""
    from chat_downloader import ChatDownloader

    from worker.sources.chatnet import local_twitch_api, local_twitch_irc

    with FakeTwitch([lines]) as twitch:
        local_twitch_irc(*twitch.address)
        local_twitch_api(twitch.api)
        downloader = ChatDownloader()
        try:
            chat = downloader.get_chat(
                TWITCH_URL, output=str(path), message_groups=["all"], max_attempts=1, interruptible_retry=False
            )
            for n, _ in enumerate(chat, 1):
                if n == items:
                    break
            chat.chat.close()  # a live Twitch chat never ends: stop reading, and close the file as its end would
            chat._output_writer.close()
        finally:
            downloader.close()


def write_ytdlp(actions: list[dict[str, Any]], path: Path, *, replay: bool = False) -> None:
    """yt-dlp's YoutubeLiveChatFD downloads the chat of ``actions`` (a live chat, or a replay) into ``path``."""
    yt_dlp = pytest.importorskip("yt_dlp", reason="yt-dlp is not installed")
    from yt_dlp.downloader.youtube_live_chat import YoutubeLiveChatFD
    from yt_dlp.networking.common import RequestHandler, Response

    from .livechat import replayed

    pages = pages_of(replayed(actions) if replay else actions, replay=replay, first="REPLAY" if replay else "LIVE")

    class CannedRH(RequestHandler):  # yt-dlp's request handlers must be named …RH
        _SUPPORTED_URL_SCHEMES = ("https",)
        _SUPPORTED_PROXY_SCHEMES = None
        _SUPPORTED_FEATURES = None

        def _check_extensions(self, extensions: Any) -> None:
            pass

        def _send(self, request: Any) -> Any:
            url = urlparse(request.url)
            if url.path == "/watch":
                body = watch_page(replay=replay)
            elif url.path.startswith("/live_chat"):
                page = pages[parse_qs(url.query)["continuation"][0]]
                body = f'<script>window["ytInitialData"] = {json.dumps(page, ensure_ascii=False)};</script>'
            else:
                body = json.dumps(pages[json.loads(request.data)["continuation"]], ensure_ascii=False)
            return Response(io.BytesIO(body.encode()), request.url, {"Content-Type": "text/html"}, 200)

    with yt_dlp.YoutubeDL({"quiet": True, "noprogress": True, "no_warnings": True}) as ydl:
        director = ydl._request_director
        director.handlers.clear()
        director.add_handler(CannedRH(logger=None))
        protocol = "youtube_live_chat_replay" if replay else "youtube_live_chat"
        info = {
            "video_id": VIDEO,
            "protocol": protocol,
            "url": f"https://www.youtube.com/watch?v={VIDEO}",
            "http_headers": {},
        }
        assert YoutubeLiveChatFD(ydl, ydl.params).real_download(str(path), info)


@contextlib.contextmanager
def scrape_threads_joined(timeout_s: float = 30) -> Iterator[None]:
    """Wait, at the end, for the library threads a scrape started (they end once their source is gone)."""
    yield
    for thread in threading.enumerate():
        if thread.name == "livetopic-scrape":
            thread.join(timeout_s)
            assert not thread.is_alive(), "the scrape's library thread did not end"
