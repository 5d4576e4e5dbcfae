"""The tail -F reader (complete lines, truncation, replacement, rewrites within one poll, resume by content) and
replay pacing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from worker.inputs import Record
from worker.sources.replay import due_times
from worker.sources.tail import HEAD_BYTES, Line, TailedFile
from worker.tools.embedded import EmbeddedRedis

from ...conftest import ROOT, worker_env


def texts(lines: list[Line]) -> list[str]:
    return [line.raw.decode() for line in lines]


def test_tail_reads_complete_lines_and_notices_truncation_and_replacement(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_bytes(b"one\ntw")
    tail = TailedFile(path)
    assert texts(tail.read_lines()) == ["one\n"]
    with open(path, "ab") as fh:
        fh.write(b"o\nthree\n")
    lines = tail.read_lines()
    assert [(line.raw, line.number) for line in lines] == [(b"two\n", 2), (b"three\n", 3)] and lines[-1].end == 14
    stored = tail.checkpoint()
    again = TailedFile(path)
    assert again.resume(stored).startswith("from line 4") and again.first_line() == b"one\n"
    again.close()
    path.write_bytes(b"new\n")  # truncated and rewritten in place
    assert tail.changed() == "truncated"
    tail.restart(reopen=False)
    assert texts(tail.read_lines()) == ["new\n"]
    other = TailedFile(path)
    assert other.resume(stored).startswith("from the start")  # not the file read before
    other.close()
    os.rename(path, tmp_path / "old.jsonl")
    path.write_bytes(b"fresh\n")
    with open(tmp_path / "old.jsonl", "ab") as fh:
        fh.write(b"last words")  # the old file's last line, without a newline
    assert tail.changed() == "replaced"
    assert texts(tail.read_lines(final=True)) == ["last words"]
    tail.restart(reopen=True)
    assert texts(tail.read_lines()) == ["fresh\n"]
    tail.close()


def test_tail_notices_a_rewrite_within_one_poll_and_pushes_no_fragment(tmp_path: Path) -> None:
    path = tmp_path / "chat.log"
    path.write_bytes(b"".join(b"old %d\n" % i for i in range(40)))
    tail = TailedFile(path)
    assert len(tail.read_lines()) == 40
    refill = [b"refilled line %d %s\n" % (i, b"x" * 40) for i in range(80)]
    with open(path, "r+b") as fh:  # truncated and refilled, larger than before, between two polls
        fh.truncate(0)
        fh.write(b"".join(refill))
    assert tail.read_lines() == [] and tail.changed() == "rewritten"  # never a fragment of a new line
    tail.restart(reopen=False)
    assert [line.raw for line in tail.read_lines(500)] == refill
    stored = tail.checkpoint()

    size = len(b"".join(refill))
    path.write_bytes(b"".join(b"same %03d.........\n" % i for i in range(size // 18)) + b"\n" * (size % 18))
    assert path.stat().st_size == size and tail.changed() == "rewritten"  # same size: sizes alone see nothing
    resumed = TailedFile(path)
    assert resumed.resume(stored).startswith("from the start")  # and a restart does not resume in it
    resumed.close()
    tail.close()


def test_tail_notices_a_rewrite_that_keeps_the_beginning(tmp_path: Path) -> None:
    path = tmp_path / "chat.csv"
    header = b"text,user\n" + b"".join(b"kept %04d,u\n" % i for i in range(HEAD_BYTES // 12 + 10))
    path.write_bytes(header + b"".join(b"first %d,u\n" % i for i in range(20)))
    tail = TailedFile(path)
    tail.read_lines(1000)
    stored = tail.checkpoint()
    path.write_bytes(header + b"".join(b"second %d,u\n" % i for i in range(20)))  # the first 4 KB unchanged
    assert tail.changed() == "rewritten"  # the bytes before the position differ
    resumed = TailedFile(path)
    assert resumed.resume(stored).startswith("from the start")
    resumed.close()
    path.write_bytes(header + b"".join(b"first %d,u\n" % i for i in range(20)) + b"third,u\n")  # grown only
    again = TailedFile(path)
    assert again.resume(stored).startswith("from line") and texts(again.read_lines()) == ["third,u\n"]
    again.close()
    tail.close()


def test_tail_drops_a_batch_read_across_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "chat.log"
    path.write_bytes(b"".join(b"line %02d\n" % i for i in range(40)))
    tail = TailedFile(path)
    assert len(tail.read_lines(10)) == 10  # the rest already read, not yet taken
    path.write_bytes(b"".join(b"next %02d\n" % i for i in range(40)))
    assert tail.read_lines(10) == [] and tail.changed() == "rewritten" and tail.offset == 80
    tail.restart(reopen=False)
    assert texts(tail.read_lines())[0] == "next 00\n"
    tail.close()


def test_speed_paces_every_comment_by_its_own_time() -> None:
    records = [Record({"text": str(i)}, offset_s=t) for i, t in enumerate([10.0, 10.5, 10.5, 12.0, 11.0, None])]
    assert due_times(records, speed=2) == [0.0, 0.25, 0.25, 1.0, 1.0, 1.0]
    live = [Record({"text": "a"}, time_s=1000.0), Record({"text": "b"}, time_s=1003.0)]
    assert due_times(live, speed=1) == [0.0, 3.0] and due_times(live, rate=4) == [0.0, 0.25]


def test_a_pipe_is_pushed_line_by_line_before_it_ends(redis_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "push", "-", "--quiet", "--redis-url", redis_server.url],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=worker_env(),
        cwd=ROOT,
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(
            '{"message_id": "a1", "message": "第一", "message_type": "text_message", '
            '"author": {"name": "u"}}\n'.encode()
        )
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while client.xlen("livetopic:comments") < 1:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        proc.stdin.write(
            b'{"message_id": "a2", "message_type": "membership_item", "author": {"name": "v"}}\n'
            b'{"message_id": "a1", "message": "\\u7b2c\\u4e00", "message_type": "text_message"}\n'
        )
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    summary = proc.stderr.read().decode()
    proc.stderr.close()
    rows = [fields for _id, fields in client.xrange("livetopic:comments")]
    assert rows == [{"text": "第一", "user": "u", "id": "a1", "message_type": "text_message"}]  # the repeated id once
    assert "1 duplicates skipped" in summary and "membership 1" in summary
