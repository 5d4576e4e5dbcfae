"""Comments (and retractions) from sources that keep going into the stream, exactly once: files still being
written (``push --follow``, position checkpointed with the entries it covers; a JSON list item by item) and
pipes (``push -``). A line that cannot be read is skipped with a WARNING naming it and counted; it never stops
the rest."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import redis.asyncio as aioredis

from ..inputs import Entry, LineDecoder, Record, Skipped, Unreadable
from ..inputs.records import Converted, warn_unreadable
from ..inputs.ytdlp import video_id_of
from ..streams.keys import follow_key
from ..streams.producer import Checkpoint
from ..streams.retry import sleep_or_stop
from ..streams.sharded import ShardedProducer
from .status import Status
from .tail import Line, TailedFile

__all__ = ["Feed", "follow_files", "read_pipe"]

log = logging.getLogger(__name__)
T = TypeVar("T")
CHUNK = 500


class Feed:
    """Send converted items to the producer (with a checkpoint, when given) and count them on ``status``."""

    def __init__(self, producer: ShardedProducer, status: Status) -> None:
        self.producer, self.status = producer, status

    async def send(self, items: Iterable[Converted], checkpoint: Checkpoint | None = None) -> None:
        entries: list[Entry] = []
        for item in items:
            if isinstance(item, Skipped):
                self.status.skipped[item.kind] += 1
            elif isinstance(item, Unreadable):
                self.status.unreadable += 1
                warn_unreadable(item, self.status.unreadable)
            else:
                entries.append(item)
        if not entries and checkpoint is None:
            return
        await self.producer.add([e.fields for e in entries], checkpoint)
        duplicates = set(self.producer.last_duplicates)
        for i, entry in enumerate(entries):
            if i in duplicates:
                self.status.duplicates += 1
            elif isinstance(entry, Record):
                self.status.pushed += 1
            else:
                self.status.retractions += 1
        self.status.tick()


@dataclass
class _Followed:
    tail: TailedFile
    decoder: LineDecoder
    key: str
    channel: str | None

    def decode(self, lines: Sequence[Line]) -> list[Converted]:
        self.decoder.items = bool(self.tail.json_list)  # a JSON list: its items are numbered, not its lines
        return [item for line in lines for item in self.decoder.decode(line.raw, line.number)]


async def _open(path: Path, producer: ShardedProducer, channel: str | None, fmt: str) -> _Followed:
    key = follow_key(producer.stream, str(path))
    tail = TailedFile(path)
    how = await asyncio.to_thread(tail.resume, await producer.checkpoint(key))
    log.info("following %s %s", path, how)
    followed = _Followed(tail, LineDecoder(str(path), channel or video_id_of(path), fmt), key, channel)
    first = tail.first_line()
    if first is not None and not tail.is_json_list():
        followed.decoder.prime(first.decode("utf-8", "replace"))
    return followed


async def _step(f: _Followed, feed: Feed) -> bool:
    """Push what ``f`` grew by; True if there was anything to do."""
    lines = f.tail.read_lines(CHUNK)
    if lines:
        await feed.send(f.decode(lines), Checkpoint(f.key, f.tail.checkpoint()))
        return True
    what = f.tail.changed()
    if what is None:
        return False
    if what == "replaced":  # the old file is complete: its last line counts even without a newline
        while lines := f.tail.read_lines(CHUNK, final=True):
            await feed.send(f.decode(lines), Checkpoint(f.key, f.tail.checkpoint()))
    log.warning("%s was %s: reading it from the start", f.tail.path, what)
    f.tail.restart(reopen=what == "replaced")
    f.decoder = LineDecoder(f.decoder.where, f.decoder.channel, f.decoder.fmt)
    await feed.send([], Checkpoint(f.key, f.tail.checkpoint()))  # a restart from here reads the new file whole
    return True


async def follow_files(
    paths: Sequence[Path],
    feed: Feed,
    redis: aioredis.Redis,
    stop: asyncio.Event,
    *,
    channel: str | None = None,
    poll_s: float = 0.1,
    fmt: str = "auto",
) -> None:
    """Follow ``paths`` (absolute: a file's position is kept under its path) like ``tail -F`` until ``stop``:
    each complete line (or item of a JSON list) pushed once, across restarts. ``fmt``: ``push --format``."""
    followed = [await _open(path, feed.producer, channel, fmt) for path in paths]
    try:
        while not stop.is_set():
            busy = False
            for f in followed:
                busy = await _step(f, feed) or busy
            feed.status.tick()
            if not busy:
                await sleep_or_stop(poll_s, stop)
    finally:
        for f in followed:
            f.tail.close()


def _reader(stream: BinaryIO, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]) -> None:
    try:
        for raw in iter(stream.readline, b""):
            loop.call_soon_threadsafe(queue.put_nowait, raw)
    finally:
        loop.call_soon_threadsafe(queue.put_nowait, None)


async def take_batch(queue: asyncio.Queue[T], stop: asyncio.Event, limit: int) -> list[T] | None:
    """Wait for the next item of ``queue`` (None when ``stop`` comes first), then take what else is queued, up to
    ``limit`` items in all."""
    getter = asyncio.ensure_future(queue.get())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not getter.done():
        getter.cancel()
        return None
    batch = [getter.result()]
    while len(batch) < limit and not queue.empty():
        batch.append(queue.get_nowait())
    return batch


async def read_pipe(
    stream: BinaryIO,
    feed: Feed,
    stop: asyncio.Event,
    *,
    channel: str | None = None,
    where: str = "<stdin>",
    fmt: str = "auto",
) -> None:
    """Push each complete line of ``stream`` as it arrives, until its end or ``stop``."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    threading.Thread(
        target=_reader, args=(stream, asyncio.get_running_loop(), queue), daemon=True, name="livetopic-pipe"
    ).start()
    decoder = LineDecoder(where, channel, fmt)
    number = 0
    ended = False
    while not ended:
        batch = await take_batch(queue, stop, CHUNK)
        if batch is None:
            return
        items: list[Converted] = []
        for raw in batch:
            if raw is None:
                ended = True
                break
            number += 1
            items += decoder.decode(raw, number)
        await feed.send(items)
