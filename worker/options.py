"""Command-line flags generated from pydantic models: every option of every command is declared once, as a field
(its type, default, constraints and description), and becomes a flag here.

- :class:`~worker.settings.Settings` fields are the settings: ``--name`` and ``LIVETOPIC_NAME`` at once
  (:func:`add_settings_flags`, :func:`settings_from_args`).
- A command's own options are a frozen model of its own (:class:`Options`), given with :func:`add_command`; its
  handler receives the validated model and the settings, ``run(options, settings) -> exit status``.

Values given on the command line are validated by the model, never by argparse (it only splits words): a flag
that was not given takes the model's default, so each default is written once, in the model, and ``--help``
says it.
"""

from __future__ import annotations

import argparse
import logging
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.fields import FieldInfo

from .errors import ConfigError
from .settings import Settings, load_settings, url_has_password

log = logging.getLogger("livetopic")

__all__ = [
    "REDIS_FLAGS",
    "STREAM_FLAGS",
    "WAIT_FLAGS",
    "Command",
    "Flag",
    "Options",
    "add_command",
    "add_group",
    "add_option_flags",
    "add_settings_flags",
    "options_from_args",
    "settings_from_args",
    "validate_options",
]

REDIS_FLAGS = ("redis_url", "redis_url_file", "redis_password", "redis_data_dir", "redis_timeout_s", "redis_cluster")
STREAM_FLAGS = ("input_stream", "output_stream", "dead_letter_stream", "group", "shards")
WAIT_FLAGS = ("wait_replicas", "wait_timeout_ms")  # a command that writes: push, scrape (the worker has them all)
REDIS_AND_STREAMS = (*REDIS_FLAGS, *STREAM_FLAGS)  # a command that talks to the workers' Redis and streams
_SETTING = "setting__"
_OPTION = "option__"


@dataclass(frozen=True, slots=True)
class Flag:
    """How a field is spelled on the command line, where ``--name VALUE`` is not all (``Annotated[T, Flag(…)]``).

    ``positional``: an argument, not a flag; ``short``: an alias such as ``-F``; ``metavar``: the value's name in
    the help; ``exclusive``: fields with the same group name exclude each other; ``repeat``: a list given as
    ``--flag A --flag B`` (else a list takes several words: ``--flag A B``); ``choices``: the accepted values,
    where the type is not a ``Literal`` that says them."""

    positional: bool = False
    short: str | None = None
    metavar: str | None = None
    exclusive: str | None = None
    repeat: bool = False
    choices: Sequence[str] | None = None


class Options(BaseModel):
    """A command's own options: frozen, unknown fields rejected. A field whose flag's name is taken by pydantic
    (``json``) has that name as its alias: ``as_json: bool = Field(False, alias="json")``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _check_choices(self) -> Options:
        """A field whose :class:`Flag` lists its choices takes one of them (each of them, a list)."""
        for name, info in type(self).model_fields.items():
            allowed = _flag_of(info).choices
            if allowed is None:
                continue
            value = getattr(self, name)
            values = value if isinstance(value, list | tuple) else [value]
            wrong = [v for v in values if v is not None and v not in allowed]
            if wrong:
                raise ValueError(f"{_flag_name(name, info)}: {wrong[0]!r} is not one of {', '.join(allowed)}")
        return self


OptionsT = TypeVar("OptionsT", bound=Options)


def _flag_of(info: FieldInfo) -> Flag:
    return next((m for m in info.metadata if isinstance(m, Flag)), Flag())


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        kept = [a for a in get_args(annotation) if a is not type(None)]
        return kept[0] if len(kept) == 1 else annotation
    return annotation


def _choices(annotation: Any, flag: Flag) -> list[str] | None:
    if flag.choices is not None:
        return list(flag.choices)
    inner = _strip_optional(annotation)
    if get_origin(inner) in (list, tuple):
        inner = get_args(inner)[0]
    return [str(v) for v in get_args(inner)] if get_origin(inner) is Literal else None


def _is_list(annotation: Any) -> bool:
    return get_origin(_strip_optional(annotation)) in (list, tuple)


def _shown(value: Any) -> str:
    if value is None or value in ((), []):
        return "none"
    if isinstance(value, tuple | list):
        return ",".join(map(str, value))
    return str(value)


def _help(info: FieldInfo, *, switch: bool) -> str:
    """The description, and the default where the description does not say it already. argparse formats help
    with %: a literal percent sign is doubled."""
    text = info.description or ""
    if not (switch or info.is_required() or "default" in text.lower()):
        default = "<computed>" if info.default_factory is not None else _shown(info.default)
        text = f"{text} (default: {default})"
    return text.replace("%", "%%")


def _flag_name(name: str, info: FieldInfo) -> str:
    return "--" + (info.alias or name).replace("_", "-")


def _add(parser: Any, groups: dict[str, Any], name: str, info: FieldInfo, dest: str, *, negatable: bool) -> None:
    flag = _flag_of(info)
    target = groups.get(flag.exclusive or "", parser)
    if flag.exclusive and flag.exclusive not in groups:
        target = groups[flag.exclusive] = parser.add_mutually_exclusive_group()
    kwargs: dict[str, Any] = {"default": argparse.SUPPRESS}
    choice_help = ""
    if info.annotation is bool:
        switch = not negatable and info.default is False
        kwargs["action"] = "store_true" if switch else argparse.BooleanOptionalAction
    else:
        switch = False
        # the choices are shown (in the help where a metavar stands for them), and checked by the model: a wrong
        # one is one line naming the flag
        choices = _choices(info.annotation, flag)
        listed = "{" + ",".join(choices) + "}" if choices else None
        kwargs["metavar"] = flag.metavar or listed or name.upper()
        choice_help = f" ({flag.metavar}: one of {listed})" if flag.metavar and listed else ""
        if _is_list(info.annotation):
            if flag.repeat:
                kwargs["action"] = "append"
            else:
                kwargs["nargs"] = "+" if info.is_required() else "*"
        elif flag.positional and not info.is_required():
            kwargs["nargs"] = "?"
    kwargs["help"] = _help(info, switch=switch) + choice_help.replace("%", "%%")
    if flag.positional:
        target.add_argument(dest, **kwargs)
        return
    names = [_flag_name(name, info), *([flag.short] if flag.short else [])]
    if info.is_required():
        kwargs["required"] = True
    target.add_argument(*names, dest=dest, **kwargs)


def add_option_flags(parser: argparse.ArgumentParser, model: type[Options]) -> None:
    """A flag (or an argument) for each field of ``model``."""
    groups: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        _add(parser, groups, name, info, _OPTION + name, negatable=False)


def add_settings_flags(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """Add ``--<name>`` for each named setting (all when ``names`` is None)."""
    fields = Settings.model_fields
    chosen = list(fields if names is None else names)
    if chosen:
        group = parser.add_argument_group("settings (also LIVETOPIC_<NAME> environment variables)")
        for name in chosen:
            _add(group, {}, name, fields[name], _SETTING + name, negatable=True)


def _given(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix)}


def _where(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """The flag (or argument) a validation error is about."""
    key = str(loc[0]) if loc else ""
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            flag = _flag_of(info)
            return (flag.metavar or name.upper()) if flag.positional else _flag_name(name, info)
    return ""


def options_from_args(args: argparse.Namespace, model: type[Options]) -> Any:
    """The ``model`` of the given flags (the others take their defaults); :class:`ConfigError` naming the flag
    of each invalid value."""
    return validate_options(model, _given(args, _OPTION))


def validate_options(model: type[OptionsT], values: dict[str, Any]) -> OptionsT:
    """``model`` of ``values`` (field names), checked as the flags are: :class:`ConfigError` naming the flag of
    each invalid value."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _where(model, err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise ConfigError("; ".join(problems)) from None


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings from the parsed flags (given ones only), the environment and defaults. A password given on the
    command line is visible to every user of the machine (``ps``, ``/proc/PID/cmdline``): it gets a warning."""
    overrides = _given(args, _SETTING)
    if url_has_password(overrides.get("redis_url")) or overrides.get("redis_password"):
        log.warning(
            "a Redis password on the command line can be read by every user of this machine (ps); give it "
            "in LIVETOPIC_REDIS_URL, LIVETOPIC_REDIS_PASSWORD or a --redis-url-file instead"
        )
    overrides.update({k: v for k, v in extra.items() if v is not None})
    return load_settings(overrides)


class Command:
    """What a parsed command line runs: ``run(options, settings)``, the options validated from the flags
    (None for a command without options of its own)."""

    def __init__(self, run: Callable[[Any, Settings], int], options: type[Options] | None = None) -> None:
        self.run, self.options = run, options

    def __call__(self, args: argparse.Namespace, settings: Settings) -> int:
        options = options_from_args(args, self.options) if self.options is not None else None
        return self.run(options, settings)


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    run: Callable[[Any, Settings], int],
    *,
    options: type[Options] | None = None,
    settings: Iterable[str] | None = (),
    **parser_kwargs: Any,
) -> argparse.ArgumentParser:
    """The subcommand ``name``: its options' flags, then the named settings' flags (``settings=None``: all of
    them)."""
    parser: argparse.ArgumentParser = sub.add_parser(name, **parser_kwargs)
    if options is not None:
        add_option_flags(parser, options)
    add_settings_flags(parser, settings)
    parser.set_defaults(func=Command(run, options))
    return parser


def add_group(sub: argparse._SubParsersAction, name: str, *, dest: str, help: str) -> argparse._SubParsersAction:
    """The command ``name`` whose subcommands (one required, its name in ``dest``) are added to what it returns."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help)
    return parser.add_subparsers(dest=dest, required=True)
