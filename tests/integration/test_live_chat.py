"""Live chat in, against a running worker: scraper files pushed (every text message classified exactly once,
with user, id and ts and the fields the scrapers keep; the rest counted as skipped; deletions and bans pushed
as retractions, which today's worker dead-letters with their reason), and ``push --follow`` on a file growing
at 200 lines/s, killed with -9 twice and restarted (each message exactly once)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from worker.inputs.records import iso_utc
from worker.tools.embedded import EmbeddedRedis
from worker.wire import RETRACTION_NOT_APPLIED

from ..chatshapes import Message, cd_csv, cd_items, expected_text, messages, pytchat_items, ytdlp_file
from ..conftest import ROOT, SHARED_DATA, worker_env
from ..livechat import Chat, youtube_chat
from ..twitchchat import twitch_chat

pytestmark = pytest.mark.slow
N = 1500  # text messages per file (plus a quarter as many other items)


@pytest.fixture
def served(redis_server: EmbeddedRedis, tiny_repo: Path, start_worker: Any) -> tuple[redis.Redis, Any]:
    """A client of the emptied Redis (text replies) and a worker process serving it."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    return client, start_worker(redis_server.url, tiny_repo)


def chat_texts() -> list[str]:
    """Real chat text from ../shared/data when present (read at test time, never stored), else made up."""
    folder = SHARED_DATA / "tvl19_chat"
    if folder.is_dir():
        rows = json.loads(sorted(folder.glob("*.json"))[0].read_text("utf-8"))
        texts = [str(r["content"]) for r in rows if str(r.get("content", "")).strip()]
        if texts:
            return texts
    return [f"留言 {i} 加油 😀 gg" for i in range(300)]


def push(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", "push", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=worker_env(),
        cwd=ROOT,
        check=False,
    )


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def by_id(client: redis.Redis, stream: str) -> Counter[str]:
    return Counter(fields.get("id", "") for _id, fields in client.xrange(stream))


def write_formats(tmp_path: Path, texts: list[str]) -> dict[Path, tuple[list[Message], dict[str, int]]]:
    files: dict[Path, tuple[list[Message], dict[str, int]]] = {}
    ms = messages(texts, N, "cdjson")
    items, skipped = cd_items(ms)
    (path := tmp_path / "chat.json").write_text(json.dumps(items, indent=4, sort_keys=True), "utf-8")
    files[path] = (ms, skipped)
    ms = messages(texts, N, "cdjsonl")
    items, skipped = cd_items(ms)
    (path := tmp_path / "chat.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items), "utf-8")
    files[path] = (ms, skipped)
    ms = messages(texts, N, "cdcsv")
    items, skipped = cd_items(ms)
    (path := tmp_path / "chat.csv").write_text(cd_csv(items), "utf-8")
    files[path] = (ms, skipped)
    ms = messages(texts, N, "pyt")
    items, skipped = pytchat_items(ms)
    (path := tmp_path / "pytchat.json").write_bytes(
        b"\xef\xbb\xbf" + ("[" + ",".join(json.dumps(i, ensure_ascii=False) for i in items) + "]").encode()
    )
    files[path] = (ms, skipped)
    ms = messages(texts, N, "ytdlp")
    text, skipped = ytdlp_file(ms, live=True)
    (path := tmp_path / "Abc_123-xyz.live_chat.json").write_text(text, "utf-8")
    files[path] = (ms, skipped)
    return files


def test_scraper_files_are_classified_exactly_once(
    redis_server: EmbeddedRedis, served: tuple[redis.Redis, Any], tmp_path: Path
) -> None:
    client, worker = served
    files = write_formats(tmp_path, chat_texts())
    for path, (ms, skipped) in files.items():
        done = push("--redis-url", redis_server.url, str(path))
        assert done.returncode == 0, done.stderr
        assert f"pushed {len(ms)} comments" in done.stderr
        total = sum(skipped.values())
        assert f"skipped {total} items without text" in done.stderr, done.stderr
        for kind, n in skipped.items():
            assert f"{kind} {n}" in done.stderr
    expected = {m.id: m for ms, _ in files.values() for m in ms}
    retractions = client.xlen("livetopic:comments") - len(expected)  # the deletions in chat-downloader's, yt-dlp's
    assert retractions == 4 * len(range(0, N, 17))  # files (3 formats), and yt-dlp's
    wait_for(lambda: client.xlen("livetopic:topics") >= len(expected), 180, "every message classified")
    wait_for(lambda: client.xlen("livetopic:dead") >= retractions, 60, "every retraction dead-lettered")
    out = {fields["id"]: fields for _id, fields in client.xrange("livetopic:topics")}
    assert client.xlen("livetopic:topics") == len(expected) == len(out) == 5 * N  # exactly once
    dead = [fields for _id, fields in client.xrange("livetopic:dead")]
    assert len(dead) == retractions and {d["error"] for d in dead} == {RETRACTION_NOT_APPLIED}
    pushed = dict(client.xrange("livetopic:comments"))
    for message_id, m in expected.items():
        fields = out[message_id]  # the output passes user, ts, id, channel through; the text is in the input
        assert (fields["user"], fields["ts"]) == (m.user, iso_utc(m.us / 1e6))
        assert pushed[fields["source_id"]]["text"] == expected_text(m)
        assert json.loads(fields["labels"]) is not None
    assert {out[m.id]["channel"] for m in files[tmp_path / "Abc_123-xyz.live_chat.json"][0]} == {"Abc_123-xyz"}
    assert worker.stop() == 0


def _append(path: Path, lines: list[str], per_s: float, done: threading.Event) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        started = time.monotonic()
        for i, line in enumerate(lines):
            delay = started + i / per_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            fh.write(line)
            fh.flush()
    done.set()


def test_follow_killed_twice_pushes_each_message_once(
    redis_server: EmbeddedRedis, served: tuple[redis.Redis, Any], tmp_path: Path
) -> None:
    client, worker = served
    ms = messages(chat_texts(), 2000, "follow")
    items, _ = cd_items(ms)
    deletions = len(range(0, len(ms), 17))  # pushed as retractions: entries too
    lines = [json.dumps(item, sort_keys=True) + "\n" for item in items]
    path = tmp_path / "growing.jsonl"
    path.write_text("", "utf-8")
    done = threading.Event()
    writer = threading.Thread(target=_append, args=(path, lines, 200.0, done), daemon=True)
    log = open(tmp_path / "follow.log", "ab")  # noqa: SIM115

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "worker", "push", "--follow", str(path), "--redis-url", redis_server.url],
            stdout=log,
            stderr=log,
            env=worker_env(),
            cwd=ROOT,
        )

    writer.start()
    follower = start()
    try:
        for _ in range(2):  # while the file grows, once the follower has pushed some: kill -9, start again
            seen = client.xlen("livetopic:comments")
            wait_for(lambda seen=seen: client.xlen("livetopic:comments") >= seen + 100, 60, "the follower pushing")
            assert not done.is_set()
            follower.send_signal(signal.SIGKILL)
            follower.wait()
            follower = start()
        writer.join(timeout=60)
        assert done.is_set()
        wait_for(lambda: client.xlen("livetopic:comments") >= len(ms) + deletions, 60, "every line pushed")
        time.sleep(0.5)  # anything more would be a duplicate
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=30) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        log.close()
    report = (tmp_path / "follow.log").read_text("utf-8", errors="replace")
    pushed = by_id(client, "livetopic:comments")
    assert len(pushed) == len(ms) + deletions and set(pushed.values()) == {1}, report[-2000:]
    assert report.count("following ") == 3 and "from line " in report
    assert "skipped" in report and "membership" in report  # the last run's summary, by kind
    wait_for(lambda: client.xlen("livetopic:topics") >= len(ms), 120, "every message classified")
    out = by_id(client, "livetopic:topics")
    assert len(out) == len(ms) and set(out.values()) == {1}
    wait_for(lambda: client.xlen("livetopic:dead") >= deletions, 60, "every retraction dead-lettered")
    assert client.xlen("livetopic:dead") == deletions
    assert set(out) == {m.id for m in ms}
    assert worker.stop() == 0
    assert os.path.getsize(path) == sum(len(line.encode()) for line in lines)


def _push_chat(url: str, path: Path, chat: Chat, *extra: str) -> None:
    done = push("--redis-url", url, str(path), *extra)
    assert done.returncode == 0, done.stderr
    assert f"pushed {len(chat.comments)} comments and {len(chat.retractions)} retractions" in done.stderr
    for kind, n in chat.skipped.items():
        assert f"{kind} {n}" in done.stderr


def test_library_files_keep_their_fields_and_their_retractions(
    redis_server: EmbeddedRedis, served: tuple[redis.Redis, Any], tmp_path: Path
) -> None:
    """Files written by chat-downloader (YouTube, Twitch), pushed: every comment classified once with
    the fields its scraper keeps; every deletion and ban one dead letter with its reason, nothing lost; the text
    output refused in one line, unless --format text."""
    from ..chatwriters import write_twitch, write_youtube

    client, worker = served
    youtube, twitch = youtube_chat(200, "ityt"), twitch_chat(200, "itw")
    write_youtube(youtube.actions, tmp_path / "youtube.json")
    write_twitch(twitch.lines, tmp_path / "twitch.jsonl", items=len(twitch.lines))
    write_youtube(youtube.actions, tmp_path / "youtube.txt")
    _push_chat(redis_server.url, tmp_path / "youtube.json", youtube, "--channel", "yt")
    _push_chat(redis_server.url, tmp_path / "twitch.jsonl", twitch)
    refused = push("--redis-url", redis_server.url, str(tmp_path / "youtube.txt"))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "chat-downloader's text output" in refused.stderr and "--format text" in refused.stderr
    forced = push("--redis-url", redis_server.url, str(tmp_path / "youtube.txt"), "--format", "text")
    assert forced.returncode == 0, forced.stderr
    lines = len((tmp_path / "youtube.txt").read_text("utf-8").splitlines())
    comments = len(youtube.comments) + len(twitch.comments) + lines
    retractions = len(youtube.retractions) + len(twitch.retractions)
    assert client.xlen("livetopic:comments") == comments + retractions
    wait_for(lambda: client.xlen("livetopic:topics") >= comments, 180, "every comment classified")
    wait_for(lambda: client.xlen("livetopic:dead") >= retractions, 60, "every retraction dead-lettered")
    out = {f["id"]: f for _id, f in client.xrange("livetopic:topics") if "id" in f}
    assert client.xlen("livetopic:topics") == comments and len(out) == len(youtube.comments) + len(twitch.comments)
    for chat, channel in ((youtube, "yt"), (twitch, "1234")):
        for want in chat.comments:
            got = out[want["id"]]
            assert {k: got[k] for k in want if k != "text"} == {k: v for k, v in want.items() if k != "text"}
            assert got["channel"] == channel
    assert {out[c["id"]]["currency"] for c in youtube.comments if "currency" in c} == {"TWD", "USD", "JPY", "EUR"}
    dead = [f for _id, f in client.xrange("livetopic:dead")]
    assert len(dead) == retractions and {d["error"] for d in dead} == {RETRACTION_NOT_APPLIED}
    assert {d.get("target_id") or d["target_author_id"] for d in dead} == {
        r.get("target_id") or r["target_author_id"] for chat in (youtube, twitch) for r in chat.retractions
    }
    assert worker.stop() == 0
