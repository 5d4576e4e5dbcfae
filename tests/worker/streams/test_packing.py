"""Commands packed by hiredis write the bytes redis-py's own packer writes, and a client from ``connect``
uses it for every kind of connection (TCP, TLS, Unix socket) against a real redis-server."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from worker.streams.client import connect
from worker.streams.packing import hiredis_packing
from worker.tools.embedded import EmbeddedRedis

COMMANDS: list[tuple[object, ...]] = [
    ("XADD", "livetopic:comments", "*", "text", "加油！🏐 ok", "user", b"\xff\xfe raw bytes"),
    ("EVALSHA", "a" * 40, 2, "k1", "k2", 0, -17, 2.5, 1e-7, "", b""),
    ("CONFIG GET", "maxmemory"),  # a command name with a space: two arguments
    (b"CLIENT LIST", "TYPE", "normal"),
    ("SET", "k", "x" * 70_000),  # past redis-py's buffer cut-off, where it writes several chunks
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: str(a[0]))
def test_the_same_bytes_as_redis_py(args: tuple[object, ...]) -> None:
    plain = Connection()
    packed = hiredis_packing(Connection)()
    assert b"".join(packed.pack_command(*args)) == b"".join(plain.pack_command(*args))


def test_an_argument_of_no_redis_type_is_a_data_error() -> None:
    with pytest.raises(DataError):
        hiredis_packing(Connection)().pack_command("SET", "k", object())


def test_every_connection_kind_gets_one_class() -> None:
    for kind in (Connection, SSLConnection, UnixDomainSocketConnection):
        made = hiredis_packing(kind)
        assert issubclass(made, kind) and made is hiredis_packing(kind)
        assert made.pack_command is not kind.pack_command


async def test_connect_packs_with_hiredis_against_a_real_server(redis_server: EmbeddedRedis) -> None:
    client = connect(redis_server.url)
    try:
        assert client.connection_pool.connection_class is hiredis_packing(Connection)
        entry = await client.xadd("s", {"text": "加油！🏐", "n": 3})
        assert await client.xrange("s") == [(entry, {b"text": "加油！🏐".encode(), b"n": b"3"})]
    finally:
        await client.aclose()
