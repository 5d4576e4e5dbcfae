"""The one way an aiohttp app is served: on any free port when asked for 0 (the port it got is told), and a port
that is taken is a ConfigError naming what, where, why and what to change."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp import web

from worker.errors import ConfigError
from worker.listen import listen


async def hello(_request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def test_port_0_binds_any_free_port_and_says_which() -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    listening = await listen(app, "127.0.0.1", 0, what="a test page")
    try:
        assert listening.port > 0 and listening.url == f"http://127.0.0.1:{listening.port}/"
        async with aiohttp.ClientSession() as session, session.get(listening.url) as response:
            assert await response.text() == "hello"
    finally:
        await listening.close()


async def test_a_taken_port_is_a_configuration_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"cannot serve a test page on 127.0.0.1:{port}: .*; use another port"):
            await listen(web.Application(), "127.0.0.1", port, what="a test page", hint="use another port")
