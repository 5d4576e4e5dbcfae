"""A worker as a child process: ``python -m worker worker`` with its own metrics port and log file, and
the few calls a parent needs (readiness, metrics, stop). Used by ``livetopic demo``, ``livetopic bench``
and the test suite, so that each starts, watches and stops workers the same way."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ..errors import LivetopicError
from .embedded import Started, free_port

__all__ = ["DashboardProcess", "WorkerProcess", "child_env", "one_thread_flags"]


def child_env(threads: int | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a child: no ``LIVETOPIC_*`` settings (children get flags), offline
    Hugging Face libraries, unbuffered output, and ``OMP_NUM_THREADS`` when ``threads`` is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVETOPIC_")}
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    env.update(extra or {})
    return env


def one_thread_flags(redis_url: str, repo: Path, *extra: str) -> list[str]:
    """Flags of a worker serving ``repo`` on ``redis_url`` on one torch thread, reading its input stream from the
    start (a test's or a drill's: the comments pushed before it started count), then ``extra``."""
    return [
        *("--redis-url", redis_url, "--model-repo", str(repo), "--group-start-id", "0", "--torch-threads", "1"),
        *extra,
    ]


class WorkerProcess(Started):
    """``python -m worker worker <flags>``, serving /metrics, /healthz and /readyz on a free local port,
    its output in ``log_path``. Started by :meth:`start` (or ``with``); ready once /readyz says 200."""

    def __init__(
        self,
        flags: Sequence[str],
        log_path: Path,
        *,
        name: str = "worker",
        threads: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = Path(log_path)
        self.cmd = [
            sys.executable,
            "-m",
            "worker",
            "worker",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(self.port),
            *flags,
        ]
        self._env = dict(env) if env is not None else child_env(threads)
        self._cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self._env, cwd=self._cwd
            )
        return self

    @property
    def popen(self) -> subprocess.Popen[bytes]:
        if self.proc is None:
            raise LivetopicError(f"{self.name} was not started")
        return self.proc

    def check_alive(self) -> None:
        """Raise :class:`LivetopicError` (with the log's tail) if the process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise LivetopicError(
                f"{self.name} exited with code {self.proc.returncode}; its log ({self.log_path}):\n{self.log_tail()}"
            )

    def wait_ready(self, timeout_s: float = 600.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            if self.ready():
                return
            time.sleep(0.1)
        raise LivetopicError(f"{self.name} was not ready within {timeout_s:.0f}s; log:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; the exit code (None if never started)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            proc.send_signal(signal.SIGCONT)  # a paused one handles its SIGTERM once running
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Stopped (SIGSTOP) inside the block, running again (SIGCONT) after it: its connections stay open, what
        Redis sends it meanwhile waits in its sockets."""
        self.popen.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            if self.popen.poll() is None:
                self.popen.send_signal(signal.SIGCONT)

    # --- talking to it ----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        """(status, body) of a GET; raises OSError when nothing listens."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as resp:
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode(errors="replace")

    def ready(self) -> bool:
        try:
            return self.get("/readyz")[0] == 200
        except OSError:
            return False

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics as ``name{labels} → value`` (empty when it cannot be read)."""
        out: dict[str, float] = {}
        try:
            _, body = self.get("/metrics")
        except OSError:
            return out
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    continue
        return out

    def metric(self, name: str) -> float:
        """One sample (``name{labels}``), or the sum of all samples of ``name`` when no labels are given."""
        samples = self.metrics()
        if "{" in name:
            return samples.get(name, 0.0)
        return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class DashboardProcess(WorkerProcess):
    """``python -m worker dashboard <flags>`` on a free local port; ready once its /readyz says 200 (the output
    stream's history is read)."""

    def __init__(
        self, flags: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        super().__init__(flags, log_path, name="dashboard", env=env, cwd=cwd)
        self.cmd = [
            sys.executable,
            "-m",
            "worker",
            "dashboard",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *flags,
        ]
