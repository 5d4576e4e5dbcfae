"""``livetopic scrape``: a live chat read through a maintained library, each text message pushed exactly once.

The URL is checked first (:func:`check_url`: a YouTube or Twitch chat, else refused at once). The library runs
in a thread of its own (its calls block); its items are converted by the same mappers as its files
(:mod:`worker.inputs`; a hostile item is skipped with a WARNING and counted, never a reason to stop), deletions
and bans included (retraction entries), and pushed with a message-id window kept in Redis, so what a source
sends again after a reconnect or a restart lands once. When the source drops (a network error, named as such:
:mod:`.chatnet`) it is opened again with back-off, until ``GiveUp`` says it has failed too often or too long
(then a :class:`~worker.errors.SourceError`, exit non-zero); when the library itself fails (the site changed),
a :class:`~worker.errors.SourceError` names the library, its version, the error and the fallback; a chat the
site says does not exist is named as that. Stopped before it ever connected, ``scrape`` fails too.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from ..errors import SourceError
from ..inputs import Record, Retraction
from ..inputs.files import fill_channel
from ..inputs.records import Converted
from ..inputs.shapes import read_row
from ..streams.retry import Backoff, with_backoff
from .chatnet import GiveUp, describe_drop, library_refusal, local_twitch_api, local_twitch_irc, own_library_logging
from .feed import CHUNK, Feed, take_batch

__all__ = ["FALLBACK", "ChatDownloaderSource", "GiveUp", "channel_of", "library_version", "scrape"]

log = logging.getLogger(__name__)

FALLBACK = (
    "fall back to yt-dlp and push --follow: `yt-dlp --skip-download --write-subs --sub-langs live_chat "
    "--no-part -o '%(id)s' URL` and, beside it, `livetopic push --follow VIDEO_ID.live_chat.json`"
)
_END = object()


def library_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def channel_of(url: str) -> str | None:
    """The video id (YouTube) or channel name (Twitch) in ``url``."""
    parsed = urlparse(url if "//" in url else "https://" + url)
    host = parsed.netloc.lower()
    if host.endswith("youtu.be"):
        return parsed.path.strip("/") or None
    if "youtube" in host:
        video = parse_qs(parsed.query).get("v")
        if video:
            return video[0]
        found = re.match(r"/(?:live|shorts)/([\w-]+)", parsed.path)
        return found[1] if found else None
    if "twitch" in host:
        return parsed.path.strip("/").split("/")[0] or None
    return None


@dataclass
class ChatDownloaderSource:
    """chat-downloader: YouTube (live chat API) and Twitch (anonymous IRC). ``prepare_session`` may change the
    ``requests.Session`` it fetches through (tests mount recorded responses there); ``twitch_irc`` is the
    (host, port) of an IRC server to read Twitch chat from instead of irc.chat.twitch.tv:6667 (a local
    stand-in in tests), ``twitch_api`` the URL of a GraphQL endpoint to ask instead of gql.twitch.tv.
    ``max_attempts``: the library's own tries per connection (our back-off does the rest).
    ``connected``: a connection was made at least once."""

    url: str
    prepare_session: Callable[[Any], None] | None = None
    max_attempts: int = 1
    twitch_irc: tuple[str, int] | None = None
    twitch_api: str | None = None
    name: str = field(default="chat-downloader", init=False)
    connected: bool = field(default=False, init=False)
    items: int = field(default=0, init=False)

    def open(self) -> tuple[str | None, Iterator[dict[str, Any]]]:
        try:
            from chat_downloader import ChatDownloader
            from chat_downloader.sites import TwitchChatDownloader, YouTubeChatDownloader
        except ImportError as exc:
            raise SourceError(
                f"chat-downloader is not installed (pip install 'livetopic[scrape]'); or {FALLBACK}"
            ) from exc
        own_library_logging()
        if self.twitch_irc is not None:
            local_twitch_irc(*self.twitch_irc)
        if self.twitch_api is not None:
            local_twitch_api(self.twitch_api)
        downloader = ChatDownloader()
        if self.prepare_session is not None:
            for site in (YouTubeChatDownloader, TwitchChatDownloader):
                self.prepare_session(downloader.create_session(site).session)
        chat = downloader.get_chat(
            self.url, message_groups=["all"], max_attempts=self.max_attempts, interruptible_retry=False
        )
        self.connected = True
        log.info("%s: reading the chat of %s (%s)", self.name, self.url, getattr(chat, "title", None) or "untitled")
        return getattr(chat, "id", None), iter(chat)

    @staticmethod
    def dropped(exc: BaseException) -> bool:
        """A dropped source (open it again) rather than a library failure."""
        import requests
        from chat_downloader.errors import RetriesExceeded

        return isinstance(exc, requests.RequestException | RetriesExceeded | OSError)

    def convert(self, item: Any) -> list[Converted]:
        """An item as entries; a hostile one (not an object, values of the wrong types) is one unreadable item."""
        self.items += 1
        return read_row(item, f"{self.url} item {self.items}", "chat-downloader")


def _hand_over(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], item: Any) -> bool:
    """Queue ``item`` for the event loop; False once that loop is closed (nobody reads any more)."""
    try:
        loop.call_soon_threadsafe(queue.put_nowait, item)
    except RuntimeError:
        return False
    return True


def _pump(items: Iterator[dict[str, Any]], loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
    """Run the library's iterator (a thread): items, then the end marker or the exception."""
    outcome: Any = _END
    try:
        for item in items:
            if not _hand_over(loop, queue, item):
                return
    except BaseException as exc:  # handed over to the event loop, raised there
        outcome = exc
    _hand_over(loop, queue, outcome)


async def _session(source: ChatDownloaderSource, feed: Feed, stop: asyncio.Event, channel: str | None) -> bool:
    """One connection: push until the chat ends (True), ``stop`` (True), or the source drops (raises)."""
    loop = asyncio.get_running_loop()
    chat_id, items = await asyncio.to_thread(source.open)
    channel = channel or chat_id or channel_of(source.url)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    threading.Thread(target=_pump, args=(items, loop, queue), daemon=True, name="livetopic-scrape").start()
    while not stop.is_set():
        batch = await take_batch(queue, stop, CHUNK)
        if batch is None:
            break
        converted: list[Converted] = []
        outcome: Any = None
        for item in batch:
            if item is _END or isinstance(item, BaseException):
                outcome = item
                break
            for one in source.convert(item):
                if isinstance(one, Record | Retraction):
                    fill_channel(one, channel)
                converted.append(one)
        await feed.send(converted)
        if outcome is _END:
            return True
        if isinstance(outcome, BaseException):
            raise outcome
    return True


async def _connection(source: ChatDownloaderSource, feed: Feed, stop: asyncio.Event, channel: str | None) -> None:
    """One session; a failure of the library itself (not a dropped source) as a :class:`SourceError`."""
    try:
        await _session(source, feed, stop, channel)
    except SourceError:
        raise
    except Exception as exc:
        if source.dropped(exc):
            raise
        refusal = library_refusal(exc, source.url)
        if refusal is not None:
            raise SourceError(refusal) from exc
        raise SourceError(
            f"{source.name} {library_version(source.name)} failed: {type(exc).__name__}: {exc}. "
            f"The site may have changed (upgrade {source.name}), or {FALLBACK}"
        ) from exc


async def scrape(
    source: ChatDownloaderSource,
    feed: Feed,
    stop: asyncio.Event,
    *,
    channel: str | None = None,
    backoff: Backoff | None = None,
    give_up: GiveUp | None = None,
) -> None:
    """Push ``source``'s chat until it ends or ``stop``; reconnect with back-off when it drops (from the base again
    after a connection that had pushed), until ``give_up`` says enough (then :class:`SourceError`). Stopped before
    it ever connected: :class:`SourceError`."""
    give_up = give_up or GiveUp()
    last = ""
    items = source.items  # what the source had delivered before the attempt that failed

    def dropped(exc: Exception, _attempt: int, delay_s: float) -> None:
        nonlocal last, items
        last = describe_drop(exc, source.url)
        give_up.failed(last, working=source.items > items)  # raises SourceError when it is time
        items = source.items
        feed.status.reconnects += 1
        log.warning("%s: %s; reconnecting in %.1fs (%s)", source.name, last, delay_s, give_up.left())

    await with_backoff(
        functools.partial(_connection, source, feed, stop, channel),
        transient=lambda exc: not isinstance(exc, SourceError) and source.dropped(exc),
        on_failure=dropped,
        backoff=backoff or Backoff(base_s=1.0, cap_s=60.0),
        stop=stop,
        progress=lambda: feed.status.pushed,
    )
    if stop.is_set() and not source.connected:
        why = f" (last error: {last})" if last else ""
        raise SourceError(f"stopped before ever connecting to {source.url}{why}")
