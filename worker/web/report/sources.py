"""Where a report's comments come from: chat files (scored by the teacher scores in the file, by a model, or
both), or a range of the output stream (scored by the workers that published it)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from ...errors import InputFileError, LivetopicError
from ...inputs import expand_paths, label_columns, parse_offset, read_rows, to_record
from ...streams.reading import lookup, scan
from ...wire import entry_time_ms
from .timeline import Run, Scored

if TYPE_CHECKING:
    from ...model.runtime import LoadedModel

__all__ = ["ChatRows", "fill_texts", "read_chat", "run_from_stream", "runs_from_chat"]

TEACHER_THRESHOLD = 0.5  # a teacher score over this puts the label on (as in training)


@dataclass(slots=True)
class ChatRows:
    title: str
    rows: list[dict[str, Any]]
    offsets: list[float]
    texts: list[str]


def read_chat(paths: Sequence[Path | str], channel: str | None = None) -> ChatRows:
    """The comments of chat files (one game: several files are merged by their times), with their offsets
    into the broadcast (``time`` or ``ts``, ``M:SS``/``H:MM:SS``)."""
    files = expand_paths(paths, suffixes=None)
    rows, offsets, texts = [], [], []
    for item in files:
        for number, row in enumerate(read_rows(item.path), 1):
            where = f"{item.path}:{number}"
            record = to_record(row, where)
            if channel is not None and record.fields.get("channel") != channel:
                continue
            if record.offset_s is None:
                raise InputFileError(f"{where}: no time of the comment ('time' or 'ts' as M:SS): a report needs "
                                     "each comment's time")
            rows.append(row)
            offsets.append(record.offset_s)
            texts.append(record.fields["text"])
    if not rows:
        raise InputFileError("no comments in " + ", ".join(str(p) for p in paths)
                             + (f" for channel {channel!r}" if channel is not None else ""))
    order = sorted(range(len(rows)), key=lambda i: offsets[i])
    title = " + ".join(dict.fromkeys(item.group for item in files))
    return ChatRows(title, [rows[i] for i in order], [offsets[i] for i in order], [texts[i] for i in order])


def _teacher(chat: ChatRows, labels: Sequence[str]) -> Run:
    comments = []
    for row, offset, text in zip(chat.rows, chat.offsets, chat.texts, strict=True):
        scores = {}
        for label in labels:
            try:
                scores[label] = float(row.get(label, 0.0))
            except (TypeError, ValueError):
                raise InputFileError(f"{chat.title}: teacher score {label!r} is {row.get(label)!r}, "
                                     "not a number") from None
        on = tuple(label for label in labels if scores[label] > TEACHER_THRESHOLD)
        comments.append(Scored(offset, text, on, scores, str(row.get("user", ""))))
    return Run("teacher scores (file)", list(labels), comments)


def _scored_by(chat: ChatRows, model: LoadedModel) -> Run:
    probs = model.predict_texts(chat.texts)
    decided = model.decide(probs)
    comments = [Scored(offset, text, tuple(on), {k: float(p) for k, p in zip(model.labels, row, strict=True)},
                       str(raw.get("user", "")))
                for raw, offset, text, on, row in zip(chat.rows, chat.offsets, chat.texts, decided, probs, strict=True)]
    return Run(f"model {model.tag}", list(model.labels), comments)


def runs_from_chat(chat: ChatRows, *, teacher: bool, model: LoadedModel | None,
                   labels: Sequence[str] | None = None) -> list[Run]:
    """The runs of a report on chat files: teacher scores (``teacher``) and/or ``model``'s scores. The
    teacher's labels: ``labels``, else the model's that the file has, else every label column of the file."""
    if not teacher and model is None:
        raise LivetopicError("a report on chat files needs --scores-from-file, --model or both")
    runs = []
    if teacher:
        columns = label_columns(chat.rows[0])
        if labels:
            chosen = list(labels)
        elif model is not None:
            chosen = [label for label in model.labels if label in columns]
        else:
            chosen = columns
        missing = [label for label in chosen if label not in columns]
        if not chosen or missing:
            raise InputFileError(f"{chat.title}: no teacher scores for {missing or 'any label'} "
                                 f"(score columns: {columns})")
        runs.append(_teacher(chat, chosen))
    if model is not None:
        runs.append(_scored_by(chat, model))
    return runs


def _clock(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _labels_in_order(entries: Iterable[tuple[str, dict[str, str]]]) -> list[str]:
    """Labels in model order (the keys of each model's first ``scores``), then any others seen."""
    seen_models: set[str] = set()
    order: dict[str, None] = {}
    for _id, fields in entries:
        model = fields.get("model", "")
        if model not in seen_models:
            seen_models.add(model)
            with contextlib.suppress(ValueError):
                order.update(dict.fromkeys(json.loads(fields.get("scores") or "{}")))
    return list(order)


async def run_from_stream(redis: aioredis.Redis, output_stream: str, *, channel: str | None = None,
                          start: str = "-", end: str = "+", max_entries: int = 1_000_000,
                          shards: Sequence[str] = ()) -> tuple[str, Run]:
    """A run from the output stream (``shards``: the output stream of each shard, else ``output_stream`` alone)
    between ``start`` and ``end`` (ids or ``-``/``+``): (title, run). Times are the comments' ``ts`` where every
    one has an ``M:SS`` time, else their input entry time."""
    entries: list[tuple[str, dict[str, str]]] = []
    where: list[int] = []  # each entry's shard
    for shard, stream in enumerate(shards or [output_stream]):
        async for entry_id, fields in scan(redis, stream, start=start, end=end, page=5000):
            if len(entries) >= max_entries:
                break
            if channel is None or fields.get("channel") == channel:
                entries.append((entry_id, fields))
                where.append(shard)
    if not entries:
        raise LivetopicError(f"no results in {output_stream} between {start} and {end}"
                             + (f" for channel {channel!r}" if channel is not None else ""))
    times = [parse_offset(f.get("ts", "")) for _i, f in entries]
    by_ts = all(t is not None for t in times)
    first_ms = min(entry_time_ms(f.get("source_id") or i) for i, f in entries)
    comments = []
    for (entry_id, fields), ts, shard in zip(entries, times, where, strict=True):
        source_ms = entry_time_ms(fields.get("source_id") or entry_id)
        offset = ts if by_ts and ts is not None else (source_ms - first_ms) / 1000
        try:
            labels, scores = json.loads(fields.get("labels") or "[]"), json.loads(fields.get("scores") or "{}")
        except ValueError:
            continue
        comments.append(Scored(offset, fields.get("text", ""), tuple(str(x) for x in labels),
                               {str(k): float(v) for k, v in scores.items()}, fields.get("user", ""),
                               fields.get("source_id", ""), shard))
    comments.sort(key=lambda c: c.offset_s)
    models = ", ".join(dict.fromkeys(f.get("model", "?") for _i, f in entries))
    title = f"{output_stream}" + (f" · channel {channel}" if channel is not None else "")
    axis = "match time (the comments' ts)" if by_ts else f"time since the first comment ({_clock(first_ms)})"
    return title, Run(f"model {models}", _labels_in_order(entries), comments, axis)


async def fill_texts(redis: aioredis.Redis, input_stream: str | Sequence[str], comments: Iterable[Scored]) -> None:
    """Look up the texts of ``comments`` that have none (output entries without ``text``) in the input stream (of
    each one's shard: ``input_stream`` lists them by shard)."""
    streams = [input_stream] if isinstance(input_stream, str) else list(input_stream)
    wanted = [c for c in comments if not c.text and c.source_id]
    for shard, stream in enumerate(streams):
        mine = [c for c in wanted if c.shard == shard]
        found = await lookup(redis, stream, list(dict.fromkeys(c.source_id for c in mine)))
        for c in mine:
            c.text = found.get(c.source_id) or "(text no longer in the input stream)"
