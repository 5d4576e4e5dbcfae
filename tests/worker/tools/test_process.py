"""WorkerProcess.paused: the process is stopped inside the block and runs again after it; one stopped when
asked to stop still ends (the bench pauses workers while it fills a backlog)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from worker.tools.process import WorkerProcess


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


def _await_state(pid: int, wanted: str, timeout_s: float = 30.0) -> str:
    """The process's state letter once it is ``wanted`` (or the last one seen after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    state = _state(pid)
    while state != wanted and time.monotonic() < deadline:
        time.sleep(0.01)
        state = _state(pid)
    return state


@pytest.fixture
def sleeper(tmp_path: Path) -> WorkerProcess:
    process = WorkerProcess([], tmp_path / "sleeper.log", name="sleeper")
    process.cmd = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.01)"]
    return process.start()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to read a process's state")
def test_paused_stops_the_process_and_lets_it_run_again(sleeper: WorkerProcess) -> None:
    try:
        with sleeper.paused():
            assert _await_state(sleeper.popen.pid, "T") == "T"
        assert _await_state(sleeper.popen.pid, "S") in ("S", "R")
    finally:
        sleeper.stop()


def test_a_paused_process_still_stops(sleeper: WorkerProcess) -> None:
    with sleeper.paused():
        assert sleeper.stop(timeout_s=20) == -15  # SIGTERM, handled once it runs again
