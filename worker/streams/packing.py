"""Commands packed by hiredis (C) on the asyncio client, as redis-py's blocking client already does.

redis-py's asyncio connections pack every command in Python, argument by argument; for a producer's pushes (the
bench's, profiled) that was half of its CPU, for the worker's publish script a few percent. redis-py's own
hiredis packer (``HiredisRespSerializer``, hiredis a dependency through ``redis[hiredis]``) writes the same bytes.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer

__all__ = ["hiredis_packing"]

_SERIALIZER = HiredisRespSerializer()


class _HiredisPacking:
    """Mixed in before a redis-py asyncio connection class: its ``pack_command`` through hiredis."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return _SERIALIZER.pack(*args)


_made: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def hiredis_packing(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """``connection_class`` (TCP, TLS or Unix socket) packing its commands with hiredis (one class each)."""
    if connection_class not in _made:
        _made[connection_class] = type(f"Hiredis{connection_class.__name__}", (_HiredisPacking, connection_class), {})
    return _made[connection_class]
