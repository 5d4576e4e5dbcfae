"""A local stand-in for a live Twitch chat, on loopback, for ``livetopic scrape`` run as a process
(``--twitch-irc``, ``--twitch-api``): an asyncio IRC server speaking as much of Twitch's IRC as chat-downloader
uses (CAP, PASS, NICK, JOIN, PING answered; then the lines the test sends: PRIVMSG with tags, CLEARMSG for a
deletion, CLEARCHAT with target-user-id for a ban or timeout) and Twitch's GraphQL over HTTP (the channel is
live, no badges). It runs its own event loop in a thread, so a test may block meanwhile. Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

__all__ = ["FakeTwitch", "clearchat", "clearmsg", "privmsg"]

ROOM = "1234"


def _tags(**tags: str) -> str:
    return "@" + ";".join(f"{key.replace('_', '-')}={value}" for key, value in tags.items())


def privmsg(channel: str, message_id: str, user_id: str, login: str, text: str, sent_ms: int) -> str:
    """A viewer's chat message, tagged as Twitch tags it."""
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
    """A moderator deleted the message ``message_id``."""
    tags = _tags(login=login, room_id=ROOM, target_msg_id=message_id, tmi_sent_ts=str(sent_ms))
    return f"{tags} :tmi.twitch.tv CLEARMSG #{channel} :the message"


def clearchat(channel: str, user_id: str, login: str, sent_ms: int, timeout_s: int | None = None) -> str:
    """A moderator banned (or, with ``timeout_s``, timed out) the user ``user_id``."""
    duration = {"ban_duration": str(timeout_s)} if timeout_s is not None else {}
    tags = _tags(**duration, room_id=ROOM, target_user_id=user_id, tmi_sent_ts=str(sent_ms))
    return f"{tags} :tmi.twitch.tv CLEARCHAT #{channel} :{login}"


def _graphql(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = []
    for op in ops:
        if op.get("operationName") == "StreamMetadata":
            user = {"stream": {"type": "live"}, "channel": {"id": ROOM}, "lastBroadcast": {"title": "排球直播"}}
            replies.append({"data": {"user": user}})
        else:
            replies.append({"data": {"badges": [], "user": {"broadcastBadges": []}}})
    return replies


class FakeTwitch:
    """Start with ``with FakeTwitch() as twitch``: ``twitch.irc`` ("127.0.0.1:PORT") and ``twitch.api`` (a URL)
    for scrape's flags; :meth:`wait_joined` until a client joined a channel; :meth:`send` lines to every client
    that joined; ``received`` holds every line the clients sent."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.joined = threading.Event()
        self._clients: list[asyncio.StreamWriter] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-twitch")
        self._servers: list[asyncio.Server] = []

    def __enter__(self) -> FakeTwitch:
        self._thread.start()
        irc_port, api_port = self._call(self._start())
        self.irc, self.api = f"127.0.0.1:{irc_port}", f"http://127.0.0.1:{api_port}/gql"
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _start(self) -> tuple[int, int]:
        irc = await asyncio.start_server(self._irc_client, "127.0.0.1", 0)
        api = await asyncio.start_server(self._api_client, "127.0.0.1", 0)
        self._servers = [irc, api]
        return irc.sockets[0].getsockname()[1], api.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        for writer in self._clients:
            writer.close()
        for server in self._servers:
            await server.wait_closed()

    def wait_joined(self, timeout_s: float = 60) -> None:
        if not self.joined.wait(timeout_s):
            raise AssertionError(f"no client joined a channel; received {self.received}")

    def send(self, *lines: str) -> None:
        """``lines`` (without CRLF) to every client that joined a channel."""
        self._call(self._send(lines))

    async def _send(self, lines: tuple[str, ...]) -> None:
        data = "".join(line + "\r\n" for line in lines).encode()
        for writer in self._clients:
            writer.write(data)
            await writer.drain()

    async def _irc_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nick = "justinfan"
        with contextlib.suppress(ConnectionError):
            while line := (await reader.readline()).decode("utf-8", "replace").rstrip("\r\n"):
                self.received.append(line)
                command, _, rest = line.partition(" ")
                if command == "CAP":
                    writer.write(f":tmi.twitch.tv CAP * ACK :{rest.partition(':')[2]}\r\n".encode())
                elif command == "NICK":
                    nick = rest
                    writer.write(f":tmi.twitch.tv 001 {nick} :Welcome, GLHF!\r\n".encode())
                elif command == "JOIN":
                    writer.write(f":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN {rest}\r\n".encode())
                    self._clients.append(writer)
                    self.joined.set()
                elif command == "PING":
                    writer.write(b":tmi.twitch.tv PONG tmi.twitch.tv\r\n")
                await writer.drain()

    async def _api_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One HTTP request (the GraphQL POST), answered, then the connection closed."""
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        length = next(
            (int(h.split(":", 1)[1]) for h in head.split("\r\n") if h.lower().startswith("content-length:")), 0
        )
        body = json.dumps(_graphql(json.loads(await reader.readexactly(length)))).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()
