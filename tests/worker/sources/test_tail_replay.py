"""The tail -F reader (complete lines, truncation, replacement, resume by content) and replay pacing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from worker.inputs import Record
from worker.sources.replay import due_times
from worker.sources.tail import TailedFile
from worker.tools.embedded import EmbeddedRedis

from ...conftest import ROOT, worker_env


def test_tail_reads_complete_lines_and_notices_truncation_and_replacement(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_bytes(b"one\ntw")
    tail = TailedFile(path)
    assert [line.text for line in tail.read_lines()] == ["one\n"]
    with open(path, "ab") as fh:
        fh.write(b"o\nthree\n")
    lines = tail.read_lines()
    assert [(line.text, line.number) for line in lines] == [("two\n", 2), ("three\n", 3)] and lines[-1].end == 14
    stored = tail.checkpoint()
    again = TailedFile(path)
    assert again.resume(stored).startswith("from line 4") and again.first_line() == "one\n"
    again.close()
    path.write_bytes(b"new\n")  # truncated and rewritten in place
    assert tail.changed() == "truncated"
    tail.restart(reopen=False)
    assert [line.text for line in tail.read_lines()] == ["new\n"]
    other = TailedFile(path)
    assert other.resume(stored).startswith("from the start")  # not the file read before
    other.close()
    os.rename(path, tmp_path / "old.jsonl")
    path.write_bytes(b"fresh\n")
    with open(tmp_path / "old.jsonl", "ab") as fh:
        fh.write(b"last words")  # the old file's last line, without a newline
    assert tail.changed() == "replaced"
    assert [line.text for line in tail.read_lines(final=True)] == ["last words"]
    tail.restart(reopen=True)
    assert [line.text for line in tail.read_lines()] == ["fresh\n"]
    tail.close()


def test_speed_paces_every_comment_by_its_own_time() -> None:
    records = [Record({"text": str(i)}, offset_s=t) for i, t in enumerate([10.0, 10.5, 10.5, 12.0, 11.0, None])]
    assert due_times(records, speed=2) == [0.0, 0.25, 0.25, 1.0, 1.0, 1.0]
    live = [Record({"text": "a"}, time_s=1000.0), Record({"text": "b"}, time_s=1003.0)]
    assert due_times(live, speed=1) == [0.0, 3.0] and due_times(live, rate=4) == [0.0, 0.25]


def test_a_pipe_is_pushed_line_by_line_before_it_ends(redis_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    proc = subprocess.Popen([sys.executable, "-m", "worker", "push", "-", "--quiet", "--redis-url", redis_server.url],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=worker_env(), cwd=ROOT)
    assert proc.stdin is not None
    try:
        proc.stdin.write('{"message_id": "a1", "message": "第一", "message_type": "text_message", '
                         '"author": {"name": "u"}}\n'.encode())
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while client.xlen("livetopic:comments") < 1:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        proc.stdin.write(b'{"message_id": "a2", "message_type": "membership_item", "author": {"name": "v"}}\n'
                         b'{"message_id": "a1", "message": "\\u7b2c\\u4e00", "message_type": "text_message"}\n')
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
    assert rows == [{"text": "第一", "user": "u", "id": "a1"}]  # the repeated id pushed once
    assert "1 duplicates skipped" in summary and "membership 1" in summary
