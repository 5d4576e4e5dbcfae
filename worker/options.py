"""Command-line flags generated from :class:`~worker.settings.Settings`, so each setting is a flag."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from typing import Any

from .settings import Settings, load_settings, url_has_password

log = logging.getLogger("livetopic")

__all__ = ["REDIS_FLAGS", "STREAM_FLAGS", "add_settings_flags", "settings_from_args"]

REDIS_FLAGS = ("redis_url", "redis_url_file", "redis_password", "redis_data_dir", "redis_timeout_s")
STREAM_FLAGS = ("input_stream", "output_stream", "dead_letter_stream", "group")
_DEST = "setting__"


def add_settings_flags(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """Add ``--<name>`` for each named setting (all when ``names`` is None)."""
    group = parser.add_argument_group("settings (also LIVETOPIC_<NAME> environment variables)")
    fields = Settings.model_fields
    for name in names if names is not None else fields:
        info = fields[name]
        flag = "--" + name.replace("_", "-")
        default = info.default if info.default_factory is None else "<computed>"
        # argparse formats help with %: a literal percent sign must be doubled
        help_text = f"{info.description or ''} (default: {default})".replace("%", "%%")
        if info.annotation is bool:
            group.add_argument(flag, dest=_DEST + name, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        else:
            group.add_argument(flag, dest=_DEST + name, default=None, metavar=name.upper(), help=help_text)


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings from the parsed flags (given ones only), the environment and defaults. A password given on the
    command line is visible to every user of the machine (``ps``, ``/proc/PID/cmdline``): it gets a warning."""
    overrides = {k[len(_DEST):]: v for k, v in vars(args).items() if k.startswith(_DEST) and v is not None}
    if url_has_password(overrides.get("redis_url")) or overrides.get("redis_password"):
        log.warning("a Redis password on the command line can be read by every user of this machine (ps); give it "
                    "in LIVETOPIC_REDIS_URL, LIVETOPIC_REDIS_PASSWORD or a --redis-url-file instead")
    overrides.update({k: v for k, v in extra.items() if v is not None})
    return load_settings(overrides)
