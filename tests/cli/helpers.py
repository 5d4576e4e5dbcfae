"""The CLI as a user meets it: ``livetopic …`` as a subprocess (the installed interpreter, offline libraries,
one torch thread), its output, and a few checks every test of this suite makes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from worker.tools.process import child_env, one_thread_flags

from ..conftest import ROOT


def livetopic(
    *args: str, cwd: Path = ROOT, timeout_s: float = 120, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``livetopic ARGS`` to its end (``input`` on its standard input)."""
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout_s,
        env=env or child_env(threads=1),
        check=False,
    )


def run_command(*argv: str) -> int:
    """``livetopic ARGV`` in this process: its flags parsed and checked as the command line's."""
    from worker.cli import build_parser
    from worker.settings import load_settings

    args = build_parser().parse_args(argv)
    return int(args.func(args, load_settings()))


def start(*args: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``livetopic ARGS`` in the background, its output in ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "worker", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=child_env(threads=1),
        )


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The command failed with exactly one line on stderr (no traceback) that contains every needle."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("livetopic: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise AssertionError(f"{what} within {timeout_s:.0f}s\n{tail}")
        time.sleep(0.1)


def reloading_worker_flags(url: str, repo: Path, *extra: str) -> list[str]:
    """``livetopic worker`` flags for one that serves ``repo`` on one torch thread from the input stream's start
    and looks for new model versions every half second, then ``extra``."""
    return one_thread_flags(url, repo, "--reload-interval-s", "0.5", *extra)
