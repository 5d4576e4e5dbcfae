"""Every command's options are declared once (a pydantic model, or the settings) and reach the command through the
one flag generator: no abbreviated flags, each default said in --help, values checked by the model with one clear
line naming the flag, and the settings (LIVETOPIC_LOG_LEVEL included) checked for every command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from worker.cli import Parser, build_parser
from worker.errors import ConfigError
from worker.options import Command, options_from_args
from worker.settings import Settings
from worker.tools.process import child_env

from ..conftest import SAMPLE
from .helpers import livetopic, one_line_error


def _parsers(parser: Parser, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Parser]]:
    found = []
    for name, sub in parser.commands.items():
        found.append(((*prefix, name), sub))
        found += _parsers(sub, (*prefix, name))
    return found


PARSERS = _parsers(build_parser())
COMMANDS = [(names, p) for names, p in PARSERS if not p.commands]


def test_every_parser_refuses_abbreviations() -> None:
    assert all(not p.allow_abbrev for _, p in PARSERS) and not build_parser().allow_abbrev
    proc = livetopic("push", "--rat", "100", "--redis-url", "redis://127.0.0.1:1/0", str(SAMPLE))
    assert proc.returncode == 2 and "unrecognized arguments: --rat" in proc.stderr, proc.stderr
    with pytest.raises(SystemExit):
        build_parser().parse_args(["model", "init", "--pres", "tiny", "--out", "repo"])


@pytest.mark.parametrize(("names", "parser"), COMMANDS, ids=[" ".join(n) for n, _ in COMMANDS])
def test_each_command_is_declared_once_and_its_help_says_each_default(names: tuple[str, ...], parser: Parser) -> None:
    command = parser.get_default("func")
    assert isinstance(command, Command), f"livetopic {' '.join(names)}: flags written by hand"
    help_text = re.sub(r"\s+", " ", parser.format_help())
    models = [command.options] if command.options is not None else []
    for model in models:
        for name, info in model.model_fields.items():
            flag = "--" + (info.alias or name).replace("_", "-")
            positional = any(getattr(m, "positional", False) for m in info.metadata)
            assert positional or flag in help_text, flag
            if info.is_required() or info.default is False or "default" in (info.description or "").lower():
                continue
            shown = "none" if info.default in (None, (), []) else str(info.default)
            assert f"(default: {shown})" in help_text, f"{flag}: default {shown} not in the help"


def test_settings_flags_say_their_defaults() -> None:
    help_text = re.sub(r"\s+", " ", livetopic("worker", "--help").stdout)
    for name in ("max_batch_size", "input_stream", "block_ms", "metrics_port"):
        assert f"(default: {Settings.model_fields[name].default})" in help_text, name
    assert "(default: <hostname>-<pid>)" in help_text


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["push", "--rate", "0", str(SAMPLE)], ["--rate", "greater than 0"]),
        (["tail", "--last", "-1"], ["--last", "greater than or equal to 0"]),
        (["dashboard", "--port", "70000"], ["--port", "less than or equal to 65535"]),
        (
            ["bench", "--preset", "tiny", "--texts", "t", "--agreement-n", "0", "--check-agreement"],
            ["--check-agreement needs --agreement-n"],
        ),
        (["report", "--window", "soon", "--out", "r.html", "f.json"], ["--window", "not a window"]),
    ],
)
def test_an_invalid_value_names_its_flag(argv: list[str], needles: list[str]) -> None:
    command = build_parser().parse_args(argv)
    with pytest.raises(ConfigError) as caught:
        options_from_args(command, command.func.options)
    for needle in needles:
        assert needle in str(caught.value)


def test_an_invalid_value_is_one_line_before_any_work() -> None:
    one_line_error(
        livetopic("push", "--rate", "0", "--redis-url", "redis://127.0.0.1:1/0", str(SAMPLE)),
        "--rate: Input should be greater than 0",
    )


def test_every_command_checks_the_settings_log_level_included(tmp_path: Path) -> None:
    """A command without settings flags of its own reads them too: a mistyped variable or level is an error,
    not a silent default."""
    init = ("model", "init", "--out", str(tmp_path / "repo"))
    bad_level = child_env(threads=1, extra={"LIVETOPIC_LOG_LEVEL": "LOUD"})
    one_line_error(livetopic(*init, env=bad_level), "--log-level / LIVETOPIC_LOG_LEVEL")
    typo = child_env(threads=1, extra={"LIVETOPIC_LOG_LEVL": "DEBUG"})
    one_line_error(livetopic(*init, env=typo), "unknown setting", "LIVETOPIC_LOG_LEVL")
    flagged = livetopic("worker", "--log-level", "LOUD", "--redis-url", "redis://127.0.0.1:1/0")
    one_line_error(flagged, "--log-level")
