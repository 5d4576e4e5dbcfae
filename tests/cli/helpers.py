"""The CLI as a user meets it: ``livetopic …`` as a subprocess (the installed interpreter, offline libraries,
one torch thread), its output, and a few checks every test of this suite makes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from worker.tools.process import WorkerProcess, child_env, one_thread_flags

from ..conftest import ROOT


def run(
    argv: Sequence[str],
    *,
    cwd: Path = ROOT,
    timeout_s: float = 120,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to its end (one torch thread unless ``env`` says otherwise), its output as text. Bytes on its
    standard input are sent as they are (a line that is not UTF-8); its output is then decoded with U+FFFD for
    what is not UTF-8."""
    raw = isinstance(input, bytes)
    done = subprocess.run(
        list(argv),
        input=input,
        capture_output=True,
        text=not raw,
        cwd=cwd,
        timeout=timeout_s,
        env=env or child_env(threads=1),
        check=False,
    )
    if not raw:
        return done
    out, err = (stream.decode(errors="replace") for stream in (done.stdout, done.stderr))
    return subprocess.CompletedProcess(done.args, done.returncode, out, err)


def livetopic(
    *args: str,
    cwd: Path = ROOT,
    timeout_s: float = 120,
    env: dict[str, str] | None = None,
    input: str | bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``livetopic ARGS`` to its end (``input`` on its standard input: see :func:`run`)."""
    return run([sys.executable, "-m", "worker", *args], cwd=cwd, timeout_s=timeout_s, env=env, input=input)


def run_command(*argv: str) -> int:
    """``livetopic ARGV`` in this process: its flags parsed and checked as the command line's."""
    from worker.cli import build_parser
    from worker.settings import load_settings

    args = build_parser().parse_args(argv)
    return int(args.func(args, load_settings()))


def spawn(
    argv: Sequence[str], *, log: Path, cwd: Path = ROOT, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in the background (one torch thread unless ``env`` says otherwise), its output in ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env or child_env(threads=1),
        )


def start(*args: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``livetopic ARGS`` in the background, its output in ``log``."""
    return spawn([sys.executable, "-m", "worker", *args], log=log, cwd=cwd)


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


def wait_for_metric(worker: WorkerProcess, sample: str, value: float, timeout_s: float, what: str) -> None:
    """Until ``worker``'s /metrics reads ``value`` for ``sample`` (``name{labels}``); its log's tail if not."""
    wait_for(lambda: worker.metric(sample) == value, timeout_s, what, worker.log_path)


def reloading_worker_flags(url: str, repo: Path, *extra: str) -> list[str]:
    """``livetopic worker`` flags for one that serves ``repo`` on one torch thread from the input stream's start
    and looks for new model versions every half second, then ``extra``."""
    return one_thread_flags(url, repo, "--reload-interval-s", "0.5", *extra)
