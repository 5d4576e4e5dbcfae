"""Scraper files (hand-written in each tool's shape) read by content: mapping, emoji, skipped kinds, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.errors import InputFileError
from worker.inputs import ACCEPTED, LineDecoder, Record, Retraction, Unreadable, read_inputs, summary_of_skipped
from worker.inputs.records import iso_utc

from ...chatshapes import cd_csv, cd_items, expected_text, messages, pytchat_items, ytdlp_file

TEXTS = ["加油加油", "這球好扯", "gg", "主播好帥", "笑死 wwww"]
MS = messages(TEXTS, 60)


def _check(records: list[Record], skipped: dict[str, int], got_skipped: dict[str, int]) -> None:
    assert [r.fields["text"] for r in records] == [expected_text(m) for m in MS]
    assert [r.fields["id"] for r in records] == [m.id for m in MS]
    assert [r.fields["user"] for r in records] == [m.user for m in MS]
    assert [r.fields["ts"] for r in records] == [iso_utc(m.us / 1e6) for m in MS]
    assert records[1].fields["ts"] == "2024-05-01T12:00:00.250Z"
    assert dict(got_skipped) == skipped


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".txt"])
def test_chat_downloader_files(tmp_path: Path, suffix: str) -> None:
    items, skipped = cd_items(MS)
    path = tmp_path / f"chat{suffix}"
    if suffix == ".csv":
        path.write_text(cd_csv(items), "utf-8")
    elif suffix == ".json":  # chat-downloader's JSON writer: indented, ASCII escapes, with a BOM added here
        path.write_bytes(b"\xef\xbb\xbf" + json.dumps(items, indent=4, sort_keys=True).encode())
    else:  # JSONL (also named .txt: the content decides)
        path.write_text("\n".join(json.dumps(i, sort_keys=True) for i in items) + "\n", "utf-8")
    reading = read_inputs([path], channel="ch1")
    _check(reading.records, skipped, reading.skipped)
    assert {"membership", "sticker", "empty message"} <= set(reading.skipped)
    assert [e.fields["target_id"] for e in reading.entries if isinstance(e, Retraction)] == [
        m.id + "-gone" for i, m in enumerate(MS) if i % 17 == 0
    ]
    assert all(r.fields["channel"] == "ch1" for r in reading.records)
    assert reading.records[4].offset_s == 1.0 and reading.records[4].time_s == MS[4].us / 1e6


def test_pytchat_json(tmp_path: Path) -> None:
    items, skipped = pytchat_items(MS)
    path = tmp_path / "pytchat.json"
    path.write_text("[" + ",".join(json.dumps(i, ensure_ascii=False) for i in items) + "]", "utf-8")
    reading = read_inputs([path])
    _check(reading.records, skipped, reading.skipped)
    assert reading.records[240 // 4 - 1].offset_s is not None


@pytest.mark.parametrize("live", [False, True])
def test_ytdlp_live_chat(tmp_path: Path, live: bool) -> None:
    text, skipped = ytdlp_file(MS, live=live)
    path = tmp_path / "dQw4w9WgXcQ.live_chat.json"
    path.write_text(text, "utf-8")
    reading = read_inputs([path])
    _check(reading.records, skipped, reading.skipped)
    assert {r.fields["channel"] for r in reading.records} == {"dQw4w9WgXcQ"}  # the video id in the file name
    assert reading.records[2].offset_s == 0.5
    assert "membership 6" in summary_of_skipped(reading.skipped)


def test_unknown_shapes_name_what_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "other.jsonl"
    path.write_text('{"body": "hi", "sender": "x"}\n', "utf-8")
    with pytest.raises(
        InputFileError,
        match=r"other.jsonl:1: not a chat shape.*found an object with fields body, "
        r"sender.*chat-downloader.*pytchat.*yt-dlp live_chat.json",
    ):
        read_inputs([path])
    csv_file = tmp_path / "x.csv"
    csv_file.write_text("author,body\na,hi\n", "utf-8")
    with pytest.raises(InputFileError, match=r"'text' column.*found header 'author,body'.*Accepted: chat-downloader"):
        read_inputs([csv_file])


def test_line_decoder_follows_each_format() -> None:
    items, _ = cd_items(MS[:5])
    decoder = LineDecoder("pipe")
    out = [x for n, item in enumerate(items, 1) for x in decoder.decode(json.dumps(item) + "\n", n)]
    assert [r.fields["id"] for r in out if isinstance(r, Record)] == [m.id for m in MS[:5]]
    csv_lines = cd_csv(items).splitlines()
    resumed = LineDecoder("file.csv")
    resumed.prime("\ufeff" + csv_lines[0])  # a file resumed past its header
    line = next(line for line in csv_lines if MS[1].id + "," in line)
    assert [r.fields["text"] for r in resumed.decode(line, 7) if isinstance(r, Record)] == [MS[1].text]
    plain = LineDecoder("pipe", channel="c")
    assert plain.decode("\ufeff你好, 世界\n", 1)[0] == Record({"text": "你好, 世界", "channel": "c"})
    json_lines = LineDecoder("pipe")
    assert json_lines.decode('{"text": "a"}', 1) == [Record({"text": "a"})]
    bad = [
        json_lines.decode(line, n)
        for n, line in enumerate([b"{oops", b'{"text": "\xff"}', b"[1]", b'{"text": "\\udc80"}', b'{"body": 1}'], 2)
    ]
    assert [str(item) for items in bad for item in items] == [
        "pipe:2: invalid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "pipe:3: not UTF-8 text (byte 0xff)",
        "pipe:4: expected a JSON object, got list",
        "pipe:5: not UTF-8 text (a lone surrogate)",
        f"pipe:6: not a chat shape livetopic knows: found an object with fields body. Accepted: {ACCEPTED}",
    ]
    assert all(isinstance(item, Unreadable) for items in bad for item in items)
    assert json_lines.decode(b'{"text": "b"}\n', 7) == [Record({"text": "b"})]  # and it reads on
