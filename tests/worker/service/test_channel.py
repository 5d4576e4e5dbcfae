"""The bounded queue between stages: a writer waits for room, the reader gets everything in order, and None once
the channel is closed and drained (how a stage learns that what is upstream has ended)."""

from __future__ import annotations

import asyncio

import pytest

from worker.service.channel import Channel

from .fakes import settle


async def test_a_writer_waits_for_room_and_nothing_is_lost() -> None:
    channel: Channel[int] = Channel(2)
    writer = asyncio.gather(*(channel.put(n) for n in range(5)))
    await settle()
    assert len(channel) == 2 and not writer.done()
    got = [await channel.get() for _ in range(5)]
    await asyncio.wait_for(writer, 5)
    assert sorted(n for n in got if n is not None) == [0, 1, 2, 3, 4]


async def test_close_lets_the_reader_drain_then_says_none() -> None:
    channel: Channel[str] = Channel(4)
    await channel.put("a")
    reader = asyncio.create_task(channel.get())
    assert await asyncio.wait_for(reader, 5) == "a"
    waiting = asyncio.create_task(channel.get())
    await settle()
    assert not waiting.done()
    await channel.put("b")
    channel.close()
    assert await asyncio.wait_for(waiting, 5) == "b"
    assert await channel.get() is None and await channel.get() is None
    with pytest.raises(RuntimeError):
        await channel.put("c")
