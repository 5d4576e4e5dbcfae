"""``livetopic tail``: the latest results (or dead letters), then new ones as they arrive: time, channel, user,
the comment and its topics in aligned columns (CJK-aware), or one JSON object per entry."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shutil
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from ..display import cell, fit
from ..inputs.records import parse_offset
from ..options import REDIS_AND_STREAMS, Flag, Options, add_command
from ..settings import Settings
from ..wire import entry_time_ms, is_retraction
from .common import run_on_redis

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["TailOptions", "json_record", "register", "row"]

HELP = "print the latest results, then new ones as they arrive"
ABOUT = (
    "Print the newest results (time, channel, user, comment, topics), then follow the stream. The time is the "
    "comment's own ts (a broadcast offset as written, a send time in local time), else when it arrived. Without "
    "--redis-url"
    " it uses the embedded server of the data directory (the one `livetopic worker` started)."
)

_JSON_FIELDS = ("labels", "scores")  # JSON inside a stream field: decoded in --json (and a pipeline's <stage>_…)
_STAGE_SUFFIXES = ("_labels", "_scores")
_INT_FIELDS = ("latency_ms", "deliveries")


def json_record(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """One entry as a JSON object of real values: ``entry_id`` (the entry's own id; a passed-through ``id`` keeps
    its name), labels as a list, scores as an object, latency and deliveries as numbers."""
    out: dict[str, Any] = {"entry_id": entry_id}
    for key, value in fields.items():
        if key in _JSON_FIELDS or key.endswith(_STAGE_SUFFIXES):
            with contextlib.suppress(ValueError):
                out[key] = json.loads(value)
                continue
        if key in _INT_FIELDS and value.isdigit():
            out[key] = int(value)
            continue
        out[key] = value
    return out


def _clock(entry_id: str) -> str:
    ms = entry_time_ms(entry_id)
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000)) if ms else "--:--:--"


def _when(fields: dict[str, str], entry_id: str) -> str:
    """The comment's own time: its ``ts`` (a broadcast offset as written, a send time in local time), else
    when it arrived (its input entry's id)."""
    ts = fields.get("ts", "").strip()
    if not ts:
        return _clock(fields.get("source_id", entry_id))
    if parse_offset(ts) is not None:
        return ts
    try:
        sent = datetime.fromisoformat(ts)
    except ValueError:
        return ts
    return sent.astimezone().strftime("%H:%M:%S") if sent.tzinfo else sent.strftime("%H:%M:%S")


def _names(value: str) -> str:
    try:
        labels = json.loads(value)
    except ValueError:
        return value
    return ", ".join(str(label) for label in labels) or "-"


def _retraction(fields: dict[str, str]) -> str:
    """What a retraction removes, in words: 'deleted message m1', 'banned author 7001 (viewer_1)'."""
    action = fields.get("action", "?")
    if action == "delete":
        return f"deleted message {fields.get('target_id', '?')}"
    who = fields.get("target_author_id", "?") + (f" ({fields['target_user']})" if fields.get("target_user") else "")
    return f"{'timed out' if action == 'timeout' else 'banned'} author {who}"


def _topics(fields: dict[str, str]) -> str:
    """The labels, then each further stage's of a pipeline version (``game: Player``), where it ran."""
    layers = [f"{key[: -len('_labels')]}: {_names(value)}" for key, value in fields.items() if key.endswith("_labels")]
    return " · ".join([_names(fields.get("labels", "[]")), *layers])


def row(entry_id: str, fields: dict[str, str], *, dead: bool, text_columns: int = 40) -> str:
    """One aligned line: the comment's time, channel, user, text, then topics or the reason; for a retraction
    (``kind=retract``), what it removes and ``↩ retraction (action)``."""
    when = cell(_when(fields, entry_id), 8)
    text = fields.get("text")
    retraction = not dead and is_retraction(fields)
    if retraction:
        text = _retraction(fields)
    shown = "(text not published)" if text is None and not dead else (text or "")
    head = (
        f"{when}  {cell(fields.get('channel', '-'), 10)}  {cell(fields.get('user', '-'), 12)}  "
        f"{cell(shown, text_columns)}  "
    )
    if dead:
        return head + f"✗ {fit(fields.get('error', '?'), 120)} (deliveries {fields.get('deliveries', '?')})"
    if retraction:
        return head + f"↩ retraction ({fit(fields.get('action', '?'), 16)})"
    return head + _topics(fields)


def _header(text_columns: int, dead: bool) -> str:
    return (
        f"{'time':<8}  {cell('channel', 10)}  {cell('user', 12)}  {cell('comment', text_columns)}  "
        f"{'why dead-lettered' if dead else 'topics'}"
    )


class TailOptions(Options):
    last: Annotated[int, Flag(metavar="N", exclusive="where")] = Field(
        10, ge=0, description="start with the newest N entries (0: only new ones)"
    )
    from_start: Annotated[bool, Flag(exclusive="where")] = Field(
        False, description="start with the first entry of the stream"
    )
    count: Annotated[int | None, Flag(metavar="N")] = Field(None, ge=1, description="stop after N entries")
    no_follow: bool = Field(False, description="print what is there and stop, without waiting")
    dead: bool = Field(False, description="the dead-letter stream (with the reasons) instead")
    as_json: bool = Field(
        False,
        alias="json",
        description="one JSON object per entry: entry_id, the fields, labels and scores as JSON values",
    )


class _Printer:
    def __init__(self, options: TailOptions) -> None:
        self.json, self.dead = options.as_json, options.dead
        tty = sys.stdout.isatty()
        self.text_columns = max(20, min(60, shutil.get_terminal_size().columns - 64)) if tty else 40
        if tty and not self.json:
            print(_header(self.text_columns, self.dead), flush=True)

    def __call__(self, entry_id: str, fields: dict[str, str]) -> None:
        if self.json:
            print(json.dumps(json_record(entry_id, fields), ensure_ascii=False), flush=True)
        else:
            print(row(entry_id, fields, dead=self.dead, text_columns=self.text_columns), flush=True)


async def _tail(settings: Settings, redis: aioredis.Redis, options: TailOptions) -> int:
    from ..streams.reading import follow_all, last
    from ..streams.retry import Retrying
    from ..streams.shards import ShardLayout

    stream = settings.dead_letter_stream if options.dead else settings.output_stream
    show = _Printer(options)
    retry = Retrying(base_s=0.2, cap_s=5.0)
    after = dict.fromkeys(ShardLayout.of(settings).all(stream), "0-0")  # every shard's stream
    seen = 0
    if not options.from_start:
        backlog = []
        for name in after:
            newest = await retry.call("XREVRANGE", last, redis, name, max(options.last, 1))
            after[name] = newest[-1][0] if newest else "0-0"  # nothing added meanwhile is missed
            backlog += newest[-options.last :] if options.last > 0 else []
        backlog.sort(key=lambda row: tuple(int(x) for x in row[0].split("-")))
        for entry_id, fields in backlog[-options.last :][: options.count] if options.last > 0 else []:
            show(entry_id, fields)
            seen += 1
    while options.count is None or seen < options.count:
        read = functools.partial(follow_all, redis, dict(after), block_ms=None if options.no_follow else 1000)
        entries = await retry.call("XREAD", read)
        if not entries and options.no_follow:
            break
        for name, entry_id, _ in entries:
            after[name] = entry_id
        for _, entry_id, fields in entries[: None if options.count is None else options.count - seen]:
            show(entry_id, fields)
            seen += 1
    return 0


def cmd_tail(options: TailOptions, settings: Settings) -> int:
    return run_on_redis(settings, _tail, options)


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "tail", cmd_tail, options=TailOptions, settings=REDIS_AND_STREAMS, help=HELP, description=ABOUT)
