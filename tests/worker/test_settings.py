from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.options import add_settings_flags, settings_from_args
from worker.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("LIVETOPIC_"):
            monkeypatch.delenv(key)


def test_defaults_are_the_contract() -> None:
    s = load_settings()
    assert (s.input_stream, s.output_stream, s.dead_letter_stream, s.group) == (
        "livetopic:comments",
        "livetopic:topics",
        "livetopic:dead",
        "livetopic",
    )
    assert s.metrics_host == "127.0.0.1" and s.metrics_port == 9400
    assert s.redis_url is None and s.group_start_id == "0"  # a default never skips a backlog
    assert s.claim_min_idle_ms == 30_000 and s.max_deliveries == 5 and s.shutdown_grace_s == 20
    assert "-" in s.consumer  # hostname-pid


def test_environment_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVETOPIC_REDIS_URL", "redis://:secret@example:6380/1")
    monkeypatch.setenv("LIVETOPIC_MAX_BATCH_SIZE", "7")
    s = load_settings()
    assert s.redis_url == "redis://:secret@example:6380/1" and s.max_batch_size == 7


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVETOPIC_MAX_BATCH_SIZE", "7")
    parser = argparse.ArgumentParser()
    add_settings_flags(parser)
    args = parser.parse_args(["--max-batch-size", "9", "--input-stream", "in", "--compile"])
    s = settings_from_args(args)
    assert s.max_batch_size == 9 and s.input_stream == "in" and s.compile is True


def test_unknown_environment_key_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVETOPIC_MAX_BACH_SIZE", "7")
    with pytest.raises(ConfigError, match="LIVETOPIC_MAX_BACH_SIZE"):
        load_settings()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"max_batch_size": 0}, "--max-batch-size"),
        ({"redis_url": "http://x"}, "--redis-url"),
        ({"device": "tpu"}, "--device"),
        ({"metrics_port": "abc"}, "--metrics-port"),
        ({"output_stream": "livetopic:comments"}, "must differ"),
    ],
)
def test_invalid_setting_names_it(overrides: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(overrides)


def test_unknown_keyword_rejected() -> None:
    with pytest.raises(ConfigError):
        load_settings({"no_such_option": 1})


def test_every_setting_has_a_flag() -> None:
    parser = argparse.ArgumentParser()
    add_settings_flags(parser)
    shown = parser.format_help()
    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')} " in shown, name


def test_block_must_fit_in_socket_timeout() -> None:
    with pytest.raises(ConfigError, match="block_ms"):
        load_settings({"block_ms": 5000, "redis_timeout_s": 2})


def test_stop_signals_count_a_repeated_signal_once_and_a_late_one_as_exit_now() -> None:
    import asyncio

    from worker.cli.common import StopSignals

    now = [100.0]
    exits: list[int] = []
    stop = asyncio.Event()
    signals = StopSignals(stop, "stopping", "bye", window_s=2.0, clock=lambda: now[0], exit_now=exits.append)
    signals("SIGTERM")
    assert stop.is_set() and exits == []
    now[0] += 1.5
    signals("SIGTERM")  # the same signal delivered twice (a process-group kill): ignored
    assert exits == []
    now[0] += 1.0
    signals("SIGINT")  # a second, deliberate signal: exit now
    assert exits == [130]


def test_the_redis_password_stays_off_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "url").write_text("redis://:s3cret@db:6379/0\n", encoding="utf-8")
    assert load_settings({"redis_url_file": tmp_path / "url"}).redis_url == "redis://:s3cret@db:6379/0"
    monkeypatch.setenv("LIVETOPIC_REDIS_PASSWORD", "p@ss/w")
    settings = load_settings({"redis_url": "redis://alice@db:6379/0"})
    assert settings.redis_url == "redis://alice:p%40ss%2Fw@db:6379/0"
    assert "p@ss" not in repr(settings.redis_password)
    with pytest.raises(ConfigError, match="has a password already"):
        load_settings({"redis_url": "redis://:x@db:6379/0"})
    with pytest.raises(ConfigError, match="needs a redis_url"):
        load_settings({})
    monkeypatch.delenv("LIVETOPIC_REDIS_PASSWORD")
    parser = argparse.ArgumentParser()
    add_settings_flags(parser)
    with caplog.at_level("WARNING"):
        settings_from_args(parser.parse_args(["--redis-url", "redis://:hunter2@db:6379/0"]))
    assert "can be read by every user of this machine" in caplog.text and "hunter2" not in caplog.text
