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
from ...model.cascade import run_cascade
from ...streams.reading import lookup, scan
from ...wire import entry_time_ms
from ..retracted import Ledger, is_retraction, order_of, retraction_of
from .timeline import Run, Scored

if TYPE_CHECKING:
    from ...model.runtime import LoadedModel

__all__ = ["ChatRows", "fill_texts", "read_chat", "run_from_stream", "runs_from_chat", "without_retracted"]

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
                raise InputFileError(
                    f"{where}: no time of the comment ('time' or 'ts' as M:SS): a report needs each comment's time"
                )
            rows.append(row)
            offsets.append(record.offset_s)
            texts.append(record.fields["text"])
    if not rows:
        raise InputFileError(
            "no comments in "
            + ", ".join(str(p) for p in paths)
            + (f" for channel {channel!r}" if channel is not None else "")
        )
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
                raise InputFileError(
                    f"{chat.title}: teacher score {label!r} is {row.get(label)!r}, not a number"
                ) from None
        on = tuple(label for label in labels if scores[label] > TEACHER_THRESHOLD)
        comments.append(Scored(offset, text, on, scores, str(row.get("user", ""))))
    return Run("teacher scores (file)", list(labels), comments)


def _scored_by(chat: ChatRows, model: LoadedModel) -> Run:
    """``model``'s topics for each comment; of a pipeline version, each further stage's too, as ``stage:Label``
    (on the comments it ran on)."""
    stages = run_cascade(model, chat.texts)
    labels: list[list[str]] = [[] for _ in chat.texts]
    scores: list[dict[str, float]] = [{} for _ in chat.texts]
    names: list[str] = []
    for i, stage in enumerate(stages):
        prefix = f"{stage.name}:" if i else ""
        names += [prefix + x for x in stage.label_names]
        for row, on, probs in zip(stage.rows.tolist(), stage.labels, stage.probs, strict=True):
            labels[row] += [prefix + x for x in on]
            scores[row].update({prefix + k: float(p) for k, p in zip(stage.label_names, probs, strict=True)})
    comments = [
        Scored(offset, text, tuple(on), sc, str(raw.get("user", "")))
        for raw, offset, text, on, sc in zip(chat.rows, chat.offsets, chat.texts, labels, scores, strict=True)
    ]
    return Run(f"model {model.tag}", names, comments)


def _layered(fields: dict[str, str]) -> tuple[list[str], dict[str, float]]:
    """A result's labels and scores, a pipeline's further stages' (``game_labels``…) as ``game:Player``."""
    labels = [str(x) for x in json.loads(fields.get("labels") or "[]")]
    scores = {str(k): float(v) for k, v in json.loads(fields.get("scores") or "{}").items()}
    for key, value in fields.items():
        if key.endswith("_labels") and key != "labels":
            stage = key[: -len("_labels")]
            labels += [f"{stage}:{x}" for x in json.loads(value)]
            stage_scores = json.loads(fields.get(f"{stage}_scores") or "{}")
            scores.update({f"{stage}:{k}": float(v) for k, v in stage_scores.items()})
    return labels, scores


def runs_from_chat(
    chat: ChatRows, *, teacher: bool, model: LoadedModel | None, labels: Sequence[str] | None = None
) -> list[Run]:
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
            raise InputFileError(
                f"{chat.title}: no teacher scores for {missing or 'any label'} (score columns: {columns})"
            )
        runs.append(_teacher(chat, chosen))
    if model is not None:
        runs.append(_scored_by(chat, model))
    return runs


def _clock(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _labels_in_order(entries: Iterable[tuple[str, dict[str, str]]]) -> list[str]:
    """Labels in model order (the keys of each model's first ``scores``), then each further stage's of a
    pipeline (``game:Player``, from the first ``game_scores`` of each model)."""
    seen: set[tuple[str, str]] = set()
    order: dict[str, None] = {}
    for _id, fields in entries:
        model = fields.get("model", "")
        for key, value in fields.items():
            if key.endswith("scores") and (model, key) not in seen:
                seen.add((model, key))
                prefix = "" if key == "scores" else key[: -len("_scores")] + ":"
                with contextlib.suppress(ValueError, TypeError):
                    order.update(dict.fromkeys(prefix + str(k) for k in json.loads(value or "{}")))
    return list(order)


def without_retracted(entries: Sequence[tuple[str, dict[str, str]]]) -> tuple[list[tuple[str, dict[str, str]]], int]:
    """The results of ``entries`` (output entries in stream order) less the retractions and the comments they
    remove (:mod:`worker.web.retracted`: a deletion its message ``id``, a ban or timeout its author's earlier
    comments of the channel), and how many comments were removed. Only comments inside ``entries`` are removed."""
    ledger: Ledger[int] = Ledger()
    removed: set[int] = set()
    for n, (entry_id, fields) in enumerate(entries):
        channel = fields.get("channel", "")
        if is_retraction(fields):
            retraction = retraction_of(fields, channel)
            removed.update(ledger.retract(retraction) if retraction is not None else ())
            removed.add(n)
            continue
        order = order_of(fields.get("source_id") or entry_id)
        message_id, author_id = fields.get("id", ""), fields.get("author_id", "")
        if order is not None and not ledger.comment(order, channel, message_id, author_id, n):
            removed.add(n)
    kept = [entry for n, entry in enumerate(entries) if n not in removed]
    return kept, len(removed) - sum(is_retraction(f) for _i, f in entries)


async def run_from_stream(
    redis: aioredis.Redis,
    output_stream: str,
    *,
    channel: str | None = None,
    start: str = "-",
    end: str = "+",
    max_entries: int = 1_000_000,
    shards: Sequence[str] = (),
) -> tuple[str, Run]:
    """A run from the output stream (``shards``: the output stream of each shard, else ``output_stream`` alone)
    between ``start`` and ``end`` (ids or ``-``/``+``): (title, run), less the comments retracted in that range
    (:func:`without_retracted`, per shard: a channel's comments and retractions share one). Times are the
    comments' ``ts`` where every one has an ``M:SS`` time, else their input entry time."""
    entries: list[tuple[str, dict[str, str]]] = []
    where: list[int] = []  # each entry's shard
    retracted = 0
    for shard, stream in enumerate(shards or [output_stream]):
        read: list[tuple[str, dict[str, str]]] = []
        async for entry_id, fields in scan(redis, stream, start=start, end=end, page=5000):
            if len(entries) + len(read) >= max_entries:
                break
            if channel is None or fields.get("channel") == channel:
                read.append((entry_id, fields))
        kept, removed = without_retracted(read)
        entries += kept
        where += [shard] * len(kept)
        retracted += removed
    if not entries:
        raise LivetopicError(
            f"no results in {output_stream} between {start} and {end}"
            + (f" for channel {channel!r}" if channel is not None else "")
        )
    times = [parse_offset(f.get("ts", "")) for _i, f in entries]
    by_ts = all(t is not None for t in times)
    first_ms = min(entry_time_ms(f.get("source_id") or i) for i, f in entries)
    comments = []
    for (entry_id, fields), ts, shard in zip(entries, times, where, strict=True):
        source_ms = entry_time_ms(fields.get("source_id") or entry_id)
        offset = ts if by_ts and ts is not None else (source_ms - first_ms) / 1000
        try:
            labels, scores = _layered(fields)
        except (ValueError, TypeError, AttributeError):
            continue
        comments.append(
            Scored(
                offset,
                fields.get("text", ""),
                tuple(labels),
                scores,
                fields.get("user", ""),
                fields.get("source_id", ""),
                shard,
            )
        )
    comments.sort(key=lambda c: c.offset_s)
    models = ", ".join(dict.fromkeys(f.get("model", "?") for _i, f in entries))
    title = f"{output_stream}" + (f" · channel {channel}" if channel is not None else "")
    title += f" · {retracted} retracted comment{'s' if retracted != 1 else ''} left out" if retracted else ""
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
