"""``push --follow`` of chat-downloader's ``.json`` output while chat-downloader's own ``ContinuousWriter``
writes it (it rewrites the closing ``]`` at every item): each item pushed exactly once, across a follower cut
off midway and restarted; the reader alone on partial and hostile items; the line reader's refusals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from worker.inputs import LineDecoder, Record, Retraction, Unreadable
from worker.sources.feed import Feed, follow_files
from worker.sources.status import Status
from worker.sources.tail import TailedFile
from worker.streams.keys import seen_key
from worker.streams.producer import Dedupe, StreamProducer

from ...twitchchat import twitch_chat

pytest.importorskip("chat_downloader", reason="the [scrape] extra is not installed")
STREAM = "livetopic:comments"


def twitch_items(n: int) -> tuple[list[dict[str, Any]], int, int]:
    """chat-downloader's items of a Twitch chat (its own IRC parser), how many entries they make, and how many of
    those are retractions."""
    from chat_downloader.sites.twitch import TwitchChatDownloader

    chat = twitch_chat(n, prefix="follow")
    text = "".join(line + "\r\n" for line in chat.lines)
    items = [TwitchChatDownloader._parse_irc_item(m) for m in TwitchChatDownloader._MESSAGE_REGEX.finditer(text)]
    return items, len(chat.comments) + len(chat.retractions), len(chat.retractions)


async def _follow_until(path: Path, redis_client: aioredis.Redis, status: Status, entries: int, write: Any) -> None:
    """Follow ``path`` while ``write()`` adds to it, until ``entries`` have landed in all, then cut the follower
    off (cancelled: no orderly stop)."""
    producer = StreamProducer(redis_client, STREAM, dedupe=Dedupe(seen_key(STREAM), 600))
    task = asyncio.create_task(follow_files([path], Feed(producer, status), redis_client, asyncio.Event(), poll_s=0.01))
    while await redis_client.xlen(STREAM) < entries:
        assert not task.done(), task
        await write()
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("indent", [None, 4])
async def test_a_growing_chat_downloader_json_is_followed_exactly_once(
    tmp_path: Path, redis_client: aioredis.Redis, indent: int | None
) -> None:
    from chat_downloader.output.continuous_write import ContinuousWriter

    items, entries, retractions = twitch_items(120)
    path = tmp_path / "chat.json"
    writer = ContinuousWriter(str(path), indent=indent, sort_keys=True, overwrite=True)
    left = iter(items)

    async def write() -> None:
        for item in [next(left, None) for _ in range(3)]:
            if item is not None:
                writer.write(item, flush=True)
        await asyncio.sleep(0.005)

    first, second = Status("push", enabled=False), Status("push", enabled=False)
    await _follow_until(path, redis_client, first, entries // 3, write)
    await _follow_until(path, redis_client, second, entries, write)  # resumes where the first left off
    writer.close()
    assert json.loads(path.read_text("utf-8")) == items  # what chat-downloader wrote is a valid JSON list
    rows = [{k.decode(): v.decode() for k, v in f.items()} for _id, f in await redis_client.xrange(STREAM)]
    ids = [r["id"] for r in rows]
    assert len(rows) == entries and len(set(ids)) == entries  # each item once, none lost
    assert sum(1 for r in rows if r.get("kind") == "retract") == retractions > 0
    assert first.unreadable == second.unreadable == 0 and second.duplicates == 0


def test_the_reader_takes_whole_items_of_a_json_list(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_bytes(b"[")
    tail = TailedFile(path)
    assert tail.read_lines() == [] and tail.is_json_list() is None  # cannot tell yet
    path.write_bytes(b'[{"message": "a ] } \\" ,", "n": [1, {"x": 2}]')  # an item still being written
    assert tail.read_lines() == [] and tail.is_json_list() is True
    path.write_bytes(b'[{"message": "a ] } \\" ,", "n": [1, {"x": 2}]}]')
    first = tail.read_lines()
    assert [(json.loads(u.raw), u.number) for u in first] == [({"message": 'a ] } " ,', "n": [1, {"x": 2}]}, 1)]
    assert tail.offset == len(path.read_bytes()) - 1  # the closing bracket is left to the writer
    with open(path, "r+b") as fh:  # the writer's way: overwrite the "]", append the item, close the list again
        fh.seek(-1, 2)
        fh.write(b', 3, {"message": "b"}]')
    units = tail.read_lines()
    assert [u.raw for u in units] == [b"3", b'{"message": "b"}'] and tail.changed() is None
    decoder = LineDecoder(str(path), items=True)
    decoded = [x for u in units for x in decoder.decode(u.raw, u.number)]
    assert isinstance(decoded[0], Unreadable) and str(decoded[0]).startswith(f"{path} item 2: expected a JSON object")
    tail.close()
    lines = tmp_path / "irc.log"
    lines.write_bytes(b"[12:00] <a> hi\n")  # a bracket that opens no JSON list: lines
    other = TailedFile(lines)
    assert [u.raw for u in other.read_lines()] == [b"[12:00] <a> hi\n"] and other.is_json_list() is False
    other.close()


def test_the_line_reader_refuses_what_it_cannot_read_line_by_line() -> None:
    listed = LineDecoder("<stdin>")
    assert [str(x) for x in listed.decode('[{"message": "a"},', 1)] == [
        "<stdin>:1: a JSON list cannot be read line by line: push the file whole (push FILE) or follow it "
        "(push --follow FILE); a pipe takes JSONL, one object a line"
    ]
    text_log = LineDecoder("<stdin>")
    refused = text_log.decode("0:05 | viewer: 加油", 1) + text_log.decode("0:06 | other: 好球", 2)
    assert all(isinstance(x, Unreadable) and "chat-downloader's text output" in x.reason for x in refused)
    forced = LineDecoder("<stdin>", fmt="text")
    assert forced.decode("0:05 | viewer: 加油", 1) == [Record({"text": "0:05 | viewer: 加油"})]
    plain = LineDecoder("<stdin>")
    assert plain.decode("25:23 拿下", 1) == [Record({"text": "25:23 拿下"})]  # a score is not a log time


def test_retractions_in_livetopics_own_shape() -> None:
    decoder = LineDecoder("<stdin>", channel="c")
    got = decoder.decode('{"kind": "retract", "target_id": "m1"}', 1)
    got += decoder.decode('{"kind": "retract", "target_author_id": "UC1", "action": "timeout", "ts": "0:05"}', 2)
    got += decoder.decode('{"kind": "retract"}', 3)
    assert got[0] == Retraction(
        {"kind": "retract", "target_id": "m1", "action": "delete", "id": "delete:m1", "channel": "c"}
    )
    assert got[1] == Retraction(
        {
            "kind": "retract",
            "action": "timeout",
            "target_author_id": "UC1",
            "ts": "0:05",
            "id": "timeout:UC1",
            "channel": "c",
        },
        offset_s=5.0,
    )
    assert str(got[2]) == "<stdin>:3: a retraction (kind=retract) needs a target_id or a target_author_id"
    only = LineDecoder("<stdin>", fmt="chat-downloader")
    assert "not a chat-downloader item (--format chat-downloader)" in str(only.decode('{"text": "hi"}', 1)[0])
