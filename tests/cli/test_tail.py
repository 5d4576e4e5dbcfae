"""``livetopic tail`` as a person reads it: time, channel, user, the comment and its topics in aligned columns
(Chinese text included), real JSON values with --json, where it starts (--last N, --from-start), dead letters
with their reason, and following new entries as they arrive."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import redis

from worker.cli import tail as tail_command
from worker.display import width
from worker.tools.embedded import EmbeddedRedis
from worker.tools.process import child_env
from worker.wire import Comment, render_dead_letter, render_result

from ..conftest import ROOT
from .helpers import livetopic, wait_for

LABELS = ["Cheer", "Game", "Broadcast", "Chat"]
COMMENTS = [  # (channel, user, text, labels)
    ("tvl", "夜貓子", "加油加油！！", ["Cheer"]),
    ("tvl", "Kevin排球迷", "那記扣殺太猛了 這球漂亮", ["Cheer", "Game"]),
    ("vbl-2", "bob", "stream lagging again", ["Broadcast"]),
    ("tvl", "小鳶子", "晚安大家", []),
]


def publish_results(client: redis.Redis, n: int = len(COMMENTS), start: int = 0) -> list[str]:
    """XADD results as a worker renders them; returns their entry ids."""
    ids = []
    for i in range(start, start + n):
        channel, user, text, labels = COMMENTS[i % len(COMMENTS)]
        source = client.xadd("livetopic:comments", {"text": text})
        comment = Comment(source, text, {"channel": channel, "user": user, "id": f"chat-{i}"})
        probs = [0.9 if label in labels else 0.1 for label in LABELS]
        ids.append(client.xadd("livetopic:topics", render_result(comment, labels, LABELS, probs, "tiny:1")))
    return ids


def tail(url: str, *args: str) -> list[str]:
    proc = livetopic("tail", "--redis-url", url, "--no-follow", *args, timeout_s=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout.splitlines()


def test_rows_are_aligned_and_show_the_comment(redis_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    publish_results(client)
    rows = tail(redis_server.url)
    assert len(rows) == len(COMMENTS)  # a fresh tail shows the latest entries (default --last 10)
    for row, (channel, user, text, labels) in zip(rows, COMMENTS, strict=True):
        assert re.match(r"\d\d:\d\d:\d\d  ", row)
        assert channel in row and user in row and text in row
        assert row.endswith(", ".join(labels) or "-") and not row.endswith("ms")
    # the columns line up on screen: each comment starts, and each topic list starts, at the same column
    starts = {width(row[: row.index(text)]) for row, (_c, _u, text, _l) in zip(rows, COMMENTS, strict=True)}
    assert len(starts) == 1, rows
    topic_starts = {
        width(row) - width(", ".join(labels) or "-") for row, (*_, labels) in zip(rows, COMMENTS, strict=True)
    }
    assert len(topic_starts) == 1, rows


def test_last_and_from_start(redis_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    publish_results(client, n=12)
    assert len(tail(redis_server.url)) == 10
    last2 = tail(redis_server.url, "--last", "2")
    assert len(last2) == 2 and COMMENTS[(12 - 1) % 4][2] in last2[-1]
    everything = tail(redis_server.url, "--from-start")
    assert len(everything) == 12 and COMMENTS[0][2] in everything[0]
    assert tail(redis_server.url, "--last", "0") == []


def test_json_has_real_values_and_keeps_both_ids(redis_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    ids = publish_results(client)
    records = [json.loads(line) for line in tail(redis_server.url, "--json")]
    assert [r["entry_id"] for r in records] == ids  # the entry's own id …
    assert [r["id"] for r in records] == [f"chat-{i}" for i in range(len(COMMENTS))]  # … and the passed-through one
    first = records[1]
    assert first["labels"] == ["Cheer", "Game"] and isinstance(first["labels"], list)
    assert first["scores"] == {"Cheer": 0.9, "Game": 0.9, "Broadcast": 0.1, "Chat": 0.1}
    assert isinstance(first["latency_ms"], int) and first["text"] == COMMENTS[1][2]


def test_dead_letters_show_the_reason(redis_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.xadd(
        "livetopic:dead",
        render_dead_letter(
            "1-0",
            "text too long: 2001 chars > max_text_chars 2000",
            1,
            {"text": "長" * 2001, "user": "u1", "channel": "tvl"},
        ),
    )
    client.xadd("livetopic:dead", render_dead_letter("2-0", "missing field 'text'", 5, {"user": "u2"}))
    rows = tail(redis_server.url, "--dead")
    assert len(rows) == 2
    assert "u1" in rows[0] and "✗ text too long" in rows[0] and rows[0].endswith("(deliveries 1)")
    assert "✗ missing field 'text'" in rows[1] and rows[1].endswith("(deliveries 5)")
    assert not any(row.endswith("ms") for row in rows)
    dead = [json.loads(line) for line in tail(redis_server.url, "--dead", "--json")]
    assert dead[1]["deliveries"] == 5 and dead[1]["error"] == "missing field 'text'"


def test_retractions_get_a_line_of_their_own(redis_server: EmbeddedRedis) -> None:
    """Issue 22: a retraction on the output stream is shown as what it removes, not as a comment without topics."""
    from worker.wire import Retract, render_retraction

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    publish_results(client, n=1)
    for retract in (
        Retract("1-0", "delete", "chat-0", {"channel": "tvl"}),
        Retract("2-0", "timeout", "7001", {"channel": "tvl", "target_user": "viewer_1"}),
    ):
        client.xadd("livetopic:topics", render_retraction(retract, 5))
    rows = tail(redis_server.url)
    assert len(rows) == 3
    assert "tvl" in rows[1] and "deleted message chat-0" in rows[1] and rows[1].endswith("↩ retraction (delete)")
    assert "timed out author 7001 (viewer_1)" in rows[2] and rows[2].endswith("↩ retraction (timeout)")
    record = json.loads(tail(redis_server.url, "--json", "--last", "1")[0])
    assert record["kind"] == "retract" and record["target_author_id"] == "7001"


def test_follows_new_entries(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    publish_results(client, n=2)
    log = tmp_path / "tail.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "tail", "--redis-url", redis_server.url, "--last", "1", "--count", "4"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=child_env(threads=1),
        )
    try:
        wait_for(lambda: len(log.read_text().splitlines()) == 1, 30, "tail shows the latest entry", log)
        publish_results(client, n=3, start=2)
        assert proc.wait(timeout=30) == 0  # stops after --count 4: the latest one and three new ones
    finally:
        proc.kill()
    rows = log.read_text(encoding="utf-8").splitlines()
    assert len(rows) == 4 and COMMENTS[1][2] in rows[0] and COMMENTS[0][2] in rows[-1]


def test_the_time_is_the_comments_own(redis_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    sent = "2024-05-01T12:00:07.250Z"
    local = datetime.fromisoformat(sent).astimezone().strftime("%H:%M:%S")
    for ts in ("1:02:03", sent, ""):
        source = client.xadd("livetopic:comments", {"text": "加油"})
        passthrough = {"channel": "tvl", "user": "u", **({"ts": ts} if ts else {})}
        client.xadd(
            "livetopic:topics",
            render_result(Comment(source, "加油", passthrough), ["Cheer"], LABELS, [0.9, 0.1, 0.1, 0.1], "tiny:1"),
        )
    offset, iso, none = tail(redis_server.url)
    assert offset.startswith("1:02:03 ") and iso.startswith(f"{local}  ")
    assert re.match(r"\d\d:\d\d:\d\d  ", none)  # no ts: when it arrived


def test_a_pipeline_result_shows_each_layer_that_ran() -> None:
    fields = {
        "source_id": "1700000000000-0",
        "text": "好球",
        "labels": '["Game"]',
        "scores": '{"Game":0.9}',
        "game_labels": '["Player"]',
        "game_scores": '{"Player":0.8}',
        "sentiment_labels": '["positive"]',
        "sentiment_scores": '{"positive":0.7}',
        "model": "cascade:2",
    }
    assert tail_command.row("1-0", fields, dead=False).endswith("Game · game: Player · sentiment: positive")
    assert tail_command.json_record("1-0", fields)["game_scores"] == {"Player": 0.8}
    assert tail_command.row("1-0", {"labels": "[]"}, dead=False).endswith("  -")
