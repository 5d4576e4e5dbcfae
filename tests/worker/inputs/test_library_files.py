"""Files written by the scrapers' own code (chat-downloader's writers, yt-dlp's YoutubeLiveChatFD, pytchat's
processors and archivers: tests/fixtures/livechat, made by the script there) from realistic chats
(tests/livechat.py): every text-bearing item read once with its fields, every deletion and ban a retraction,
every skipped kind counted under one name, the text outputs refused with one line, ``--speed`` timing on each."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from worker.errors import InputFileError
from worker.inputs import Reading, Record, Retraction, read_inputs
from worker.sources.replay import due_times

from ...chatwriters import VIDEO, write_twitch, write_youtube, write_ytdlp
from ...livechat import Chat, youtube_chat
from ...twitchchat import twitch_chat

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "livechat"
N = 90


@pytest.fixture(scope="module")
def chats() -> dict[str, Chat]:
    return {"youtube": youtube_chat(N), "twitch": twitch_chat(N)}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, chats: dict[str, Chat]) -> Path:
    """Every file the libraries write of the two chats."""
    folder = tmp_path_factory.mktemp("written")
    youtube, twitch = chats["youtube"], chats["twitch"]
    for suffix in (".json", ".jsonl", ".csv", ".txt"):
        write_youtube(youtube.actions, folder / f"cd-youtube{suffix}")
        write_twitch(twitch.lines, folder / f"cd-twitch{suffix}", items=len(twitch.lines))
    write_ytdlp(youtube.actions, folder / f"{VIDEO}.live_chat.json")
    write_ytdlp(youtube.actions, folder / "replay.live_chat.json", replay=True)
    return folder


def _without(fields: dict[str, str], *keys: str) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k not in keys}


def _check(reading: Reading, chat: Chat, channel: str, *, ban_ids: bool = True) -> None:
    """Every comment once, in order, with exactly its fields; the retractions in order; the skipped kinds."""
    comments = [e.fields for e in reading.entries if isinstance(e, Record)]
    assert [c["id"] for c in comments] == [c["id"] for c in chat.comments]
    for got, want in zip(comments, chat.comments, strict=True):
        assert got == {**want, "channel": channel}, want["id"]
    retractions = [e.fields for e in reading.entries if isinstance(e, Retraction)]
    assert len(retractions) == len(chat.retractions)
    for got, want in zip(retractions, chat.retractions, strict=True):
        assert got["channel"] == channel and got["kind"] == "retract"
        keys = ("channel", "ts", "target_user", "channel_id") + (() if ban_ids and "id" in want else ("id",))
        assert _without(got, *keys) == _without(want, *keys)
    assert len({r["id"] for r in retractions}) == len(retractions)  # each its own de-duplication id
    assert reading.skipped == chat.skipped
    deleted = {r["target_id"] for r in retractions if "target_id" in r}
    assert deleted and deleted < {c["id"] for c in comments}  # each deletion names a message pushed before it


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv"])
def test_chat_downloader_youtube_files(written: Path, chats: dict[str, Chat], suffix: str) -> None:
    reading = read_inputs([written / f"cd-youtube{suffix}"], channel="yt-channel")
    _check(reading, chats["youtube"], "yt-channel", ban_ids=False)
    assert reading.retractions == 8 and reading.comments == 97
    assert {"paid_message", "membership_item", "text_message"} == {r.fields["message_type"] for r in reading.records}


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv"])
def test_chat_downloader_twitch_files(written: Path, chats: dict[str, Chat], suffix: str) -> None:
    """Highlighted, bits, resubscription and announcement messages pushed; the channel from the room id."""
    reading = read_inputs([written / f"cd-twitch{suffix}"])
    _check(reading, chats["twitch"], "1234")
    types = Counter(r.fields["message_type"] for r in reading.records)
    assert types == {"text_message": 79, "highlighted_message": 11, "resubscription": 9, "announcement": 6}
    assert sum(1 for r in reading.records if r.fields.get("bits") == "100") == 15
    actions = Counter(e.fields["action"] for e in reading.entries if isinstance(e, Retraction))
    assert actions == {"delete": 10, "timeout": 3, "ban": 2}


@pytest.mark.parametrize("replay", [False, True])
def test_ytdlp_files(written: Path, chats: dict[str, Chat], replay: bool) -> None:
    name = "replay.live_chat.json" if replay else f"{VIDEO}.live_chat.json"
    reading = read_inputs([written / name])
    _check(reading, chats["youtube"], "replay" if replay else VIDEO, ban_ids=False)
    assert all(e.offset_s is not None for e in reading.entries)


def _pytchat_expected() -> Chat:
    expected = json.loads((FIXTURES / "pytchat-expected.json").read_text("utf-8"))
    return Chat(
        comments=expected["comments"], retractions=expected["retractions"], skipped=Counter(expected["skipped"])
    )


@pytest.mark.parametrize("name", ["pytchat-archive.jsonl", "pytchat-replay-archive.jsonl"])
def test_pytchat_jsonfile_archiver(name: str) -> None:
    """The raw actions pytchat archives are read as yt-dlp's (issue 22: they were refused)."""
    reading = read_inputs([FIXTURES / name], channel="c")
    _check(reading, _pytchat_expected(), "c", ban_ids=False)
    if name.startswith("pytchat-replay"):  # the wrapper is gone: the items' own time text gives the offset
        assert [r.offset_s for r in reading.records][:3] == [0.0, 1.0, 1.0]


def test_pytchat_chatdata_json() -> None:
    """pytchat's processor drops what is not a chat item, and gives a milestone YouTube's header as its message:
    such an item is a membership, skipped."""
    chat = _pytchat_expected()
    milestones = [c for c in chat.comments if c["message_type"] == "membership_item"]
    expected = Chat(
        comments=[c for c in chat.comments if c not in milestones],
        skipped=chat.skipped - Counter({"system message": 1, "ticker": 2}) + Counter({"membership": len(milestones)}),
    )
    reading = read_inputs([FIXTURES / "pytchat-chatdata.json"], channel="c")
    assert reading.retractions == 0
    assert [r.fields for r in reading.records] == [{**c, "channel": "c"} for c in expected.comments]
    assert reading.skipped == expected.skipped


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("cd-youtube.txt", "chat-downloader's text output"),
        ("cd-twitch.txt", "chat-downloader's text output"),
        ("pytchat-archive.tsv", "pytchat's TSVArchiver output"),
    ],
)
def test_text_outputs_are_refused_in_one_line_unless_format_text(written: Path, name: str, message: str) -> None:
    path = written / name if name.startswith("cd-") else FIXTURES / name
    with pytest.raises(InputFileError) as refused:
        read_inputs([path])
    assert str(refused.value).startswith(f"{path}: {message}") and "\n" not in str(refused.value)
    assert "--format text" in str(refused.value)
    lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
    assert len(read_inputs([path], fmt="text").records) == len(lines)


def test_other_logs_are_refused_and_plain_text_is_not(tmp_path: Path) -> None:
    irc = tmp_path / "irc.txt"
    irc.write_text("".join(f"[12:00:{i:02d}] <viewer{i}> 第{i}句\n" for i in range(20)), "utf-8")
    with pytest.raises(InputFileError, match=r"irc.txt: looks like another tool's log.*--format text"):
        read_inputs([irc])
    plain = tmp_path / "plain.txt"
    plain.write_text("25:23 這局拿下\n好球\n[哭] 可惜\n2:1 領先\n加油\n", "utf-8")  # scores and brackets are chat
    assert len(read_inputs([plain]).records) == 5


def test_format_restricts_the_shapes(written: Path) -> None:
    path = written / "cd-youtube.jsonl"
    assert read_inputs([path], fmt="chat-downloader").comments == 97
    with pytest.raises(InputFileError, match=r"cannot read a single comment.*not a yt-dlp item \(--format yt-dlp\)"):
        read_inputs([path], fmt="yt-dlp")
    assert read_inputs([FIXTURES / "pytchat-archive.jsonl"], fmt="pytchat").comments > 0  # its archiver: pytchat


def _clock(entry: Any) -> float:
    return entry.offset_s if entry.offset_s is not None else entry.time_s


@pytest.mark.parametrize(
    "name",
    [
        "cd-youtube.json",
        "cd-youtube.jsonl",
        "cd-youtube.csv",
        "cd-twitch.json",
        "cd-twitch.jsonl",
        "cd-twitch.csv",
        f"{VIDEO}.live_chat.json",
        "replay.live_chat.json",
        "pytchat-archive.jsonl",
        "pytchat-replay-archive.jsonl",
        "pytchat-chatdata.json",
    ],
)
def test_speed_follows_each_formats_own_clock(written: Path, name: str) -> None:
    """``--speed 4``: the comments of every format are due at their own times (a quarter of their spacing)."""
    path = written / name if not name.startswith("pytchat") else FIXTURES / name
    records = read_inputs([path]).records
    due = due_times(records, speed=4.0)
    assert due == sorted(due) and due[-1] > 0
    timed = [(d, _clock(r)) for d, r in zip(due, records, strict=True) if _clock(r) is not None]
    base = timed[0][1]
    assert all(d == pytest.approx((clock - base) / 4.0) for d, clock in timed if clock >= base)
