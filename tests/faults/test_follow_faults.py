"""Producers under bad input and rewritten files, on Redis 6.2 and 7, as real processes (``livetopic push``
started as a child, killed with SIGKILL, stopped with SIGSTOP to put a rewrite between two polls):

- one line that cannot be read (not UTF-8, invalid JSON, a lone surrogate) never stops ``push --follow``,
  ``push -`` or ``push FILE``: it is skipped with a WARNING naming its file and line, every good line before
  and after it lands exactly once, and a restart does not meet it again;
- ``push --follow`` notices every rewrite of its file: truncate-and-refill within one poll (copytruncate with
  a busy writer), a rewrite to the same size, replacement (rename rotation), a kill -9 in the middle of one:
  no fragment pushed, nothing twice, nothing of the new content missed.

Exactly once is counted from the input stream by the texts the tests generate (no message ids: the
de-duplication window cannot hide a line pushed twice)."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..cli.helpers import livetopic, start
from ..conftest import ROOT
from .conftest import INPUT, Server


def texts(server: Server) -> collections.Counter[str]:
    rows: Any = server.sync.xrange(INPUT)
    return collections.Counter(fields[b"text"].decode() for _id, fields in rows)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def lines(texts_: Iterable[str]) -> bytes:
    return "".join(f"{text}\n" for text in texts_).encode()


class Follower:
    """``livetopic push --follow PATHS`` as a child process; each start logs to its own file."""

    def __init__(self, server: Server, paths: list[Path], logs: Path) -> None:
        self.server, self.paths, self.logs = server, paths, logs
        self.runs: list[Path] = []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Follower:
        log_path = self.logs / f"follow-{len(self.runs)}.log"
        self.runs.append(log_path)
        argv = ["push", "--follow", *map(str, self.paths), "--redis-url", self.server.url, "--dedupe-window-s", "0"]
        self.proc = start(*argv, cwd=ROOT, log=log_path)
        return self

    def log(self, run: int = -1) -> str:
        return self.runs[run].read_text("utf-8", errors="replace")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def wait_landed(self, wanted: Iterable[str], timeout_s: float = 90) -> None:
        """Until every text of ``wanted`` is in the input stream; fails at once if the follower exits."""
        wanted = set(wanted)
        deadline = time.monotonic() + timeout_s
        while not wanted <= set(texts(self.server)):
            assert self.proc is not None
            code = self.proc.poll()
            assert code is None, f"push --follow exited {code}:\n{self.log()[-3000:]}"
            assert time.monotonic() < deadline, f"not landed: {sorted(wanted - set(texts(self.server)))[:5]}…"
            time.sleep(0.05)

    def wait_log(self, needle: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while needle not in self.log():
            assert time.monotonic() < deadline, f"{needle!r} not logged:\n{self.log()[-3000:]}"
            time.sleep(0.05)

    def stop(self) -> int:
        assert self.proc is not None
        self.signal(signal.SIGTERM)
        return self.proc.wait(60)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def follower(server: Server, tmp_path: Path) -> Iterator[Callable[..., Follower]]:
    made: list[Follower] = []

    def make(*paths: Path) -> Follower:
        made.append(Follower(server, list(paths), tmp_path))
        return made[-1]

    yield make
    for one in made:
        one.close()


def assert_each_once(server: Server, expected: Iterable[str]) -> None:
    counts = texts(server)
    assert {t: n for t, n in counts.items() if n > 1} == {}, "pushed twice"
    assert set(counts) == set(expected), (
        f"missing {sorted(set(expected) - set(counts))[:5]}, "
        f"unexpected (fragments?) {sorted(set(counts) - set(expected))[:5]}"
    )


def push(server: Server, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """``livetopic push ARGS --quiet`` run to its end (``data``: its standard input)."""
    return livetopic("push", *args, "--quiet", "--redis-url", server.url, input=data)


# --- item 3: one bad line ------------------------------------------------------------------------------
def test_a_bad_line_never_stops_push_follow(server: Server, tmp_path: Path, follower: Callable[..., Follower]) -> None:
    plain, jsonl = tmp_path / "chat.txt", tmp_path / "chat.jsonl"

    def json_lines(prefix: str, n: int) -> bytes:
        return "".join(f'{{"text": "{prefix} {i}"}}\n' for i in range(n)).encode()

    plain.write_bytes(lines(f"plain {i}" for i in range(5)))
    jsonl.write_bytes(json_lines("json", 5))
    run = follower(plain, jsonl).start()
    run.wait_landed([*(f"plain {i}" for i in range(5)), *(f"json {i}" for i in range(5))])

    append(plain, b"bad \xff line\n" + lines(f"plain after {i}" for i in range(20)))  # line 6
    append(
        jsonl,
        b'{"text": oops\n'
        + b'{"text": "bad \xff"}\n'
        + b'{"text": "\\ud800"}\n'  # lines 6, 7, 8
        + json_lines("json after", 20),
    )
    good = [
        *(f"plain {i}" for i in range(5)),
        *(f"json {i}" for i in range(5)),
        *(f"plain after {i}" for i in range(20)),
        *(f"json after {i}" for i in range(20)),
    ]
    run.wait_landed(good)
    first = run.log()
    for needle in (
        f"{plain}:6: not UTF-8 text (byte 0xff)",
        f"{jsonl}:6: invalid JSON",
        f"{jsonl}:7: not UTF-8 text (byte 0xff)",
        f"{jsonl}:8: not UTF-8 text (a lone surrogate)",
    ):
        assert needle in first and "WARNING" in first, first[-3000:]

    run.kill()  # kill -9, then start again: the position is past the bad lines
    run.start()
    append(plain, lines(f"plain last {i}" for i in range(5)))
    good += [f"plain last {i}" for i in range(5)]
    run.wait_landed(good)
    assert run.stop() == 0, run.log()
    second = run.log()
    assert f"{plain}:6" not in second and f"{jsonl}:6" not in second  # not met again after the restart
    assert_each_once(server, good)


def test_a_bad_line_in_a_pipe_loses_nothing(server: Server) -> None:
    for data, bad in (
        (b"a\nb\nbad \xff\nc\n", "<stdin>:3: not UTF-8 text (byte 0xff)"),
        (b'{"text": "d"}\n{"text": "e"}\n{oops\n{"text": "f"}\n', "<stdin>:3: invalid JSON"),
    ):
        done = push(server, "-", "--dedupe-window-s", "0", data=data)
        assert done.returncode == 0, done.stderr
        assert bad in done.stderr and "WARNING" in done.stderr and "skipped 1 unreadable line" in done.stderr, (
            done.stderr
        )
    assert_each_once(server, "abcdef")


def test_push_of_files_with_a_broken_row_pushes_the_rest(server: Server, tmp_path: Path) -> None:
    jsonl, csv_file, plain = tmp_path / "a.jsonl", tmp_path / "b.csv", tmp_path / "c.txt"
    jsonl.write_bytes(b'{"text": "j0"}\n{"text": "j1"}\n{"text": oops\n{"text": "j2 \xff"}\n{"text": "j3"}\n')
    csv_file.write_bytes(b'text,user\nc0,u\nc1 \xff,u\nc2,"v\nw"\n"c3 never closes,u\nc4,u\n')
    plain.write_bytes(b"p0\n\xfe\np1\n")
    done = push(server, str(jsonl), str(csv_file), str(plain))
    assert done.returncode == 0, done.stderr
    for needle in (
        f"{jsonl}:3: invalid JSON",
        f"{jsonl}:4: not UTF-8 text (byte 0xff)",
        f"{csv_file}:3: not UTF-8 text (byte 0xff)",
        f"{plain}:2: not UTF-8 text (byte 0xfe)",
        "skipped 4 unreadable lines",
    ):
        assert needle in done.stderr, done.stderr
    # a quote that never closes would swallow the rest of the file: its line is read alone, as --follow does
    assert_each_once(server, ["j0", "j1", "j3", "c0", "c2", "c3 never closes,u", "c4", "p0", "p1"])

    nothing = tmp_path / "d.jsonl"  # no row readable at all: not a chat file, refused as a whole
    nothing.write_bytes(b'{"text": oops\n{"body": 1}\n')
    refused = push(server, str(nothing))
    assert refused.returncode == 2 and f"{nothing}: cannot read a single comment" in refused.stderr, refused.stderr
    assert f"{nothing}:1: invalid JSON" in refused.stderr and "Traceback" not in refused.stderr


# --- item 4: rewrites ----------------------------------------------------------------------------------
def rewrite_between_polls(run: Follower, path: Path, data: bytes) -> None:
    """Truncate ``path`` and write ``data`` while the follower is stopped (SIGSTOP): both within one poll."""
    run.signal(signal.SIGSTOP)
    try:
        with open(path, "r+b") as fh:
            fh.truncate(0)
            fh.write(data)
    finally:
        run.signal(signal.SIGCONT)


def sized(prefix: str, total_b: int) -> list[str]:
    """Distinct lines that take exactly ``total_b`` bytes with their newlines."""
    texts_ = [f"{prefix} {i:04d}".ljust(19, ".") for i in range(total_b // 20)]
    texts_[0] += "." * (total_b % 20)
    assert len(lines(texts_)) == total_b
    return texts_


def test_follow_notices_every_rewrite(server: Server, tmp_path: Path, follower: Callable[..., Follower]) -> None:
    path = tmp_path / "chat.log"
    old = [f"old {i}" for i in range(40)]
    path.write_bytes(lines(old))
    run = follower(path).start()
    run.wait_landed(old)

    refill = [f"refilled line {i} {'x' * 40}" for i in range(80)]  # longer: the file ends up larger than before
    rewrite_between_polls(run, path, lines(refill))
    run.wait_landed(refill[-1:])  # lines land in order: the last one landed, all have
    expected = old + refill
    assert_each_once(server, expected)
    assert "was rewritten" in run.log()

    run.kill()  # kill -9 and start again: resumes after the refilled lines, nothing twice
    run.start()
    run.wait_log("from line 81")
    more = [f"more {i}" for i in range(10)]
    append(path, lines(more))
    run.wait_landed(more)
    expected += more

    same = sized("same size", len(lines(refill + more)))  # rewritten to exactly the size read so far
    rewrite_between_polls(run, path, lines(same))
    run.wait_landed(same)
    expected += same

    again = [f"again {i}" for i in range(30)]  # rewritten, then killed at once: wherever it stood, nothing twice
    rewrite_between_polls(run, path, lines(again))
    run.kill()
    run.start()
    run.wait_landed(again)
    expected += again

    run.signal(signal.SIGSTOP)  # rename rotation: the old file's last line (no newline) still counts
    os.rename(path, tmp_path / "chat.log.1")
    append(tmp_path / "chat.log.1", b"last words")
    path.write_bytes(lines(f"fresh {i}" for i in range(10)))
    run.signal(signal.SIGCONT)
    fresh = ["last words", *(f"fresh {i}" for i in range(10))]
    run.wait_landed(fresh)
    expected += fresh
    assert run.stop() == 0, run.log()
    assert_each_once(server, expected)
