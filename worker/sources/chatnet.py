"""The edges of ``scrape``'s chat library (chat-downloader), where its behaviour meets the user:

- :func:`check_url`: a URL that is not a YouTube or Twitch chat is refused at once, saying what is accepted;
- :func:`describe_drop`: a dropped connection named by its cause ("cannot resolve www.youtube.com"), never
  blamed on the library; :func:`library_refusal`: what the site said (no such video, no chat…);
- :class:`GiveUp`: how many failed reconnects in a row (``--max-retries``) and how long without a working
  connection (``--give-up-after``) before ``scrape`` stops with an error;
- :func:`own_library_logging`: chat-downloader attaches its own handler to its logger and to ``urllib3``'s and
  then logs through the ``urllib3`` logger (a rebound module global), so each of its lines came out twice, once
  relabelled ``urllib3``; its lines go through livetopic's logging once, under ``chat_downloader``;
- :func:`local_twitch_irc`, :func:`local_twitch_api`: read Twitch chat from another IRC server, and ask another
  GraphQL endpoint whether the channel is live (``scrape --twitch-irc``/``--twitch-api``: a local stand-in in
  tests, a relay).
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

from ..errors import SourceError

__all__ = [
    "ACCEPTED_URLS",
    "GiveUp",
    "check_url",
    "describe_drop",
    "library_refusal",
    "local_twitch_api",
    "local_twitch_irc",
    "own_library_logging",
]

ACCEPTED_URLS = (
    "a YouTube video or live stream (https://www.youtube.com/watch?v=VIDEO_ID, https://youtu.be/VIDEO_ID, "
    "https://www.youtube.com/live/VIDEO_ID, https://www.youtube.com/@CHANNEL/live) or a Twitch channel or video "
    "(https://www.twitch.tv/CHANNEL, https://www.twitch.tv/videos/VIDEO_ID)"
)
YOUTUBE_HOSTS = ("youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be", "www.youtu.be")
TWITCH_HOSTS = ("twitch.tv", "www.twitch.tv", "m.twitch.tv", "go.twitch.tv", "clips.twitch.tv", "player.twitch.tv")
TWITCH_IRC = "irc.chat.twitch.tv"
_HOST_IN_TEXT = re.compile(r"(?:Failed to resolve '|host='|https?://)([A-Za-z0-9.-]+)")


def check_url(url: str) -> str:
    """``url`` as the library should get it (``https://`` added where it has no scheme), or
    :class:`SourceError` saying what is accepted, when it is not a YouTube or Twitch chat."""
    text = url.strip()
    full = text if "://" in text else "https://" + text
    parsed = urlparse(full)
    host = (parsed.hostname or "").lower()
    site: object = None
    if parsed.scheme in ("http", "https") and host in YOUTUBE_HOSTS + TWITCH_HOSTS:
        try:
            from chat_downloader.sites import TwitchChatDownloader, YouTubeChatDownloader
        except ImportError:  # the source says how to install it
            return full
        site = (YouTubeChatDownloader if host in YOUTUBE_HOSTS else TwitchChatDownloader).matches(full)
    if not site:
        raise SourceError(f"not a YouTube or Twitch chat URL: {url!r}. Accepted: {ACCEPTED_URLS}")
    return full


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _host(exc: BaseException, url: str) -> str:
    """The host a failed connection was for: named in the error, else the one the URL's site connects to."""
    for error in _chain(exc):
        request_url = getattr(getattr(error, "request", None), "url", None)
        if isinstance(request_url, str) and request_url:
            return urlparse(request_url).hostname or ""
        found = _HOST_IN_TEXT.search(str(error))
        if found:
            return found[1]
    host = (urlparse(url).hostname or "").lower()
    return TWITCH_IRC if host in TWITCH_HOSTS else "www.youtube.com"


def describe_drop(exc: BaseException, url: str) -> str:
    """A dropped connection in words: its network cause where it has one ("cannot resolve www.youtube.com (no
    network, or no DNS?)"), else the error as the library gave it."""
    host = _host(exc, url)
    for error in _chain(exc):
        name = type(error).__name__
        if isinstance(error, socket.gaierror) or name == "NameResolutionError":
            return f"cannot resolve {host} (no network, or no DNS?)"
        if isinstance(error, ConnectionRefusedError):
            return f"connection refused by {host}"
        if isinstance(error, TimeoutError) or name in ("ConnectTimeoutError", "ConnectTimeout", "ReadTimeout"):
            return f"timed out talking to {host}"
        if isinstance(error, ssl.SSLError) or name == "SSLError":
            return f"TLS failed with {host}: {error}"
        if isinstance(error, ConnectionResetError | BrokenPipeError):
            return f"the connection to {host} was cut"
    return f"the source dropped ({type(exc).__name__}: {exc})"


# chat-downloader's errors that are the site's answer about this URL (not a broken library)
_REFUSALS = (
    "VideoNotFound",
    "UserNotFound",
    "NoVideos",
    "VideoUnavailable",
    "LoginRequired",
    "VideoUnplayable",
    "NoChatReplay",
    "ChatDisabled",
    "URLNotProvided",
    "InvalidURL",
    "SiteNotSupported",
)


def library_refusal(exc: BaseException, url: str) -> str | None:
    """What the site said about ``url`` when the library reports it (no such video, chat disabled…)."""
    if type(exc).__name__ in _REFUSALS:
        return f"{url}: {exc} ({type(exc).__name__})"
    return None


@dataclass
class GiveUp:
    """Stop reconnecting after ``max_retries`` failed attempts in a row, or once the source has not worked for
    ``after_s`` seconds (since the start, or since it last delivered anything)."""

    max_retries: int = 10
    after_s: float = 300.0
    failures: int = field(default=0, init=False)
    since: float = field(default_factory=time.monotonic, init=False)

    def failed(self, reason: str, *, working: bool) -> None:
        """Count a failure (``working``: the connection had delivered something first); raises
        :class:`SourceError` when it is time to give up."""
        now = time.monotonic()
        if working:
            self.failures, self.since = 0, now
        self.failures += 1
        down_s = now - self.since
        if self.failures > self.max_retries or down_s >= self.after_s:
            raise SourceError(
                f"giving up after {self.failures} failed attempt{'s' if self.failures != 1 else ''} "
                f"in {down_s:.0f}s (--max-retries {self.max_retries}, --give-up-after "
                f"{self.after_s:g}): {reason}"
            )

    def left(self) -> str:
        left_s = max(0.0, self.after_s - (time.monotonic() - self.since))
        return f"attempt {self.failures} of {self.max_retries}, giving up in {left_s:.0f}s at most"


def own_library_logging() -> None:
    """chat-downloader's log lines through livetopic's logging, once each, under the ``chat_downloader`` name;
    its chatter ("Site: youtube.com" at every attempt) only with ``--debug`` (``scrape`` says what it does)."""
    from chat_downloader import debugging

    for name in ("chat_downloader", "urllib3"):
        logging.getLogger(name).removeHandler(debugging.handler)
    library = logging.getLogger("chat_downloader")
    debugging.logger = library
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        library.setLevel(logging.WARNING)


def local_twitch_irc(host: str, port: int) -> None:
    """Make chat-downloader read Twitch chat from ``host:port`` instead of irc.chat.twitch.tv:6667."""
    from chat_downloader.sites import twitch

    base = twitch.TwitchChatIRC
    if getattr(base, "livetopic_address", None) == (host, port):
        return
    original = getattr(base, "livetopic_original", base)

    class LocalIRC(original):  # type: ignore[misc, valid-type]
        livetopic_address = (host, port)
        livetopic_original = original

        def __init__(self) -> None:
            self.socket = socket.create_connection((host, port))
            self.current_channel = None
            self.send_raw("CAP REQ :twitch.tv/tags twitch.tv/commands twitch.tv/membership")
            self.send_raw("PASS SCHMOOPIIE")
            self.send_raw("NICK justinfan67420")

    twitch.TwitchChatIRC = LocalIRC


def local_twitch_api(url: str) -> None:
    """Make chat-downloader ask Twitch's GraphQL questions (is the channel live, its badges) at ``url`` instead of
    https://gql.twitch.tv/gql."""
    from chat_downloader.sites import TwitchChatDownloader

    TwitchChatDownloader._GQL_API_URL = url
