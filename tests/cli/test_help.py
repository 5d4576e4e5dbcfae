"""Every command's --help renders, `livetopic --version` answers, and the top-level help is written for users."""

from __future__ import annotations

import pytest

from worker.cli import Parser, build_parser

from .helpers import livetopic


def _commands(parser: Parser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, sub in parser.commands.items():
        found.append((*prefix, name))
        found += _commands(sub, (*prefix, name))
    return found


COMMANDS = _commands(build_parser())


def test_every_command_is_listed() -> None:
    names = {c[0] for c in COMMANDS}
    assert {"worker", "push", "tail", "model", "demo", "bench", "train", "evaluate", "label"} <= names
    assert ("model", "init") in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_renders(command: tuple[str, ...]) -> None:
    proc = livetopic(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: livetopic {' '.join(command)}") and proc.stderr == ""
    assert "--debug" in proc.stdout


def test_top_level_help_and_version() -> None:
    proc = livetopic("--help")
    assert proc.returncode == 0 and "streaming topic classifier" in proc.stdout
    assert "first steps:" in proc.stdout and "livetopic demo" in proc.stdout
    for internal in ("composition root", "Signal handlers", "imports"):
        assert internal not in proc.stdout
    version = livetopic("--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("livetopic 0.")


def test_worker_help_lists_every_setting() -> None:
    from worker.settings import Settings

    out = livetopic("worker", "--help").stdout
    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')}" in out
    assert "99.5%" in out and "--no-output-text" in out
