"""A local stand-in for a live Twitch chat, on loopback, for ``livetopic scrape`` (a process: ``--twitch-irc``,
``--twitch-api``; in-process: ``ChatDownloaderSource(twitch_irc=…, twitch_api=…)``) and for chat-downloader
writing its files (tests/chatwriters.py): an asyncio IRC server speaking as much of Twitch's IRC as
chat-downloader uses (CAP, PASS, NICK, JOIN, PING answered; then the lines of the chat: a scripted session per
connection as it joins, and the lines a test sends when it likes; tests/twitchchat.py writes them) and Twitch's
GraphQL over HTTP (the channel is live, no badges). It runs its own event loop in a thread, so a test may block
meanwhile. Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Sequence
from typing import Any

from .twitchchat import ROOM

__all__ = ["FakeTwitch"]


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
    """Start with ``with FakeTwitch() as twitch``: ``twitch.irc`` ("127.0.0.1:PORT", or ``twitch.address``) and
    ``twitch.api`` (a URL) for scrape's flags. Each connection that joins a channel (a reconnect is a new one)
    is sent the next of ``sessions`` (lines without CRLF) at once; :meth:`send` sends more lines to every
    connection joined, when the test likes; :meth:`drop` closes them (the client reconnects).
    :meth:`wait_joined` waits for joins; ``joins`` holds each connection's JOIN line, ``received`` every line
    the clients sent."""

    def __init__(self, sessions: Sequence[Sequence[str]] = ()) -> None:
        self.sessions = [list(lines) for lines in sessions]
        self.received: list[str] = []
        self.joins: list[str] = []
        self._joined = threading.Condition()
        self._clients: list[asyncio.StreamWriter] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-twitch")
        self._servers: list[asyncio.Server] = []

    def __enter__(self) -> FakeTwitch:
        self._thread.start()
        irc_port, api_port = self._call(self._start())
        self.address = ("127.0.0.1", irc_port)
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
        await self._drop()
        for server in self._servers:
            await server.wait_closed()

    def wait_joined(self, count: int = 1, timeout_s: float = 60) -> None:
        """Until ``count`` connections in all have joined a channel."""
        with self._joined:
            if not self._joined.wait_for(lambda: len(self.joins) >= count, timeout_s):
                raise AssertionError(f"{len(self.joins)} of {count} joins; received {self.received}")

    def send(self, *lines: str) -> None:
        """``lines`` (without CRLF) to every connection joined."""
        self._call(self._send(self._clients, lines))

    def drop(self) -> None:
        """Close every connection joined, as a network that drops them."""
        self._call(self._drop())

    async def _drop(self) -> None:
        clients, self._clients = self._clients, []
        for writer in clients:
            writer.close()

    @staticmethod
    async def _send(writers: Sequence[asyncio.StreamWriter], lines: Sequence[str]) -> None:
        data = "".join(line + "\r\n" for line in lines).encode()
        for writer in writers:
            writer.write(data)
            await writer.drain()

    def _join(self, line: str, writer: asyncio.StreamWriter) -> list[str]:
        """A connection joined: kept for :meth:`send`, counted; its session (the lines it gets first)."""
        self._clients.append(writer)
        with self._joined:
            self.joins.append(line)
            self._joined.notify_all()
        return self.sessions.pop(0) if self.sessions else []

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
                    await self._send([writer], self._join(line, writer))
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
