"""What every subcommand shares: the event loop runner, the Redis to talk to, offline library settings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Coroutine, Iterator
from typing import Any

from ..settings import Settings

__all__ = ["quiet_libraries", "redis_for", "run_async"]


def quiet_libraries() -> None:
    """Never reach a hub at run time; no progress bars or warnings from transformers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with contextlib.suppress(Exception):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


def run_async(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(coro)


@contextlib.contextmanager
def redis_for(settings: Settings, announce: bool = True) -> Iterator[str]:
    """The configured Redis URL, or an embedded redis-server for the duration of the block."""
    if settings.redis_url:
        yield settings.redis_url
        return
    from ..tools.embedded import EmbeddedRedis

    with EmbeddedRedis(settings.redis_data_dir) as server:
        if announce:
            print(f"embedded redis-server at {server.url} (data in {server.data_dir})", file=sys.stderr, flush=True)
        yield server.url
