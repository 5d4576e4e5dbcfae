"""Commands packed by hiredis (C) on the asyncio client, as redis-py's blocking client already does.

redis-py's asyncio connections pack every command in Python, argument by argument; for the worker's publish
script (two arguments per result, 256 results a call) and a producer's pushes that was the largest cost of the
Redis path. hiredis (a dependency through ``redis[hiredis]``) writes the same bytes.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import DataError

__all__ = ["hiredis_packing"]


class _HiredisPacking:
    """Mixed in before a redis-py asyncio connection class: its ``pack_command`` through hiredis."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):  # "CONFIG GET" → two arguments, as redis-py does
            args = tuple(args[0].encode().split()) + args[1:]
        elif b" " in args[0]:
            args = tuple(args[0].split()) + args[1:]
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc


_made: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def hiredis_packing(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """``connection_class`` (TCP, TLS or Unix socket) packing its commands with hiredis (one class each)."""
    if connection_class not in _made:
        _made[connection_class] = type(f"Hiredis{connection_class.__name__}", (_HiredisPacking, connection_class), {})
    return _made[connection_class]
