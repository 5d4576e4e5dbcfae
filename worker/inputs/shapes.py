"""Which tool wrote a row, told from its fields (never from the file name), and the row as comments.

A row of the scrapers' shapes (:mod:`.ytdlp`, :mod:`.chatdownloader`, :mod:`.pytchat`) becomes records,
retractions and skipped items; a row of livetopic's own shape (``text`` or ``content``, and the
:data:`~worker.wire.PASSTHROUGH_FIELDS`; the chat-log JSON's ``time``) becomes one record, and one with
``kind=retract`` one retraction. Anything else is an error that names the accepted shapes and what was found;
:func:`read_row` makes it an :class:`~.records.Unreadable` item instead (``push``: one bad row never stops the
rest). ``fmt`` (``push --format``) restricts the shapes a row may have: ``auto`` accepts them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InputFileError
from ..wire import PASSTHROUGH_FIELDS
from . import chatdownloader, pytchat, ytdlp
from .records import Converted, Record, Retraction, Unreadable, parse_offset

__all__ = [
    "ACCEPTED",
    "FORMATS",
    "METADATA_COLUMNS",
    "RETRACTION_FIELDS",
    "convert_row",
    "describe_row",
    "label_columns",
    "read_row",
    "text_of",
    "to_record",
    "unknown_shape",
]

TEXT_FIELDS = ("text", "content")
# Columns that are never labels: identifiers, times, and the sentiment scores some chat exports carry.
METADATA_COLUMNS = frozenset(
    {
        "text",
        "content",
        "time",
        "timestamp",
        "user",
        "author",
        "id",
        "game",
        "group",
        "channel",
        "video",
        "source",
        "ts",
        "negative",
        "neutral",
        "positive",
        *PASSTHROUGH_FIELDS,
        "kind",
        "action",
        "target_id",
        "target_author_id",
        "target_user",
    }
)
# The fields of a retraction entry (docs/INPUTS.md, "Moderation"), beside channel, channel_id, ts and id.
RETRACTION_FIELDS = ("kind", "action", "target_id", "target_author_id", "target_user")
# push --format: the shapes a file may have ("auto": any; "text": each line one comment, nothing detected)
FORMATS = ("auto", "chat-downloader", "pytchat", "yt-dlp", "livetopic", "text")
ACCEPTED = (
    "chat-downloader items (JSON list, JSONL or CSV: message, message_type, author.name…); "
    "pytchat items (JSON: message, type, author.channelId…); "
    "YouTube actions (yt-dlp live_chat.json, pytchat JsonfileArchiver: one action a line); "
    "livetopic's own: JSON list, JSONL or CSV with a text (or content) field, or kind=retract; "
    "plain text, one comment a line"
)


def text_of(row: dict[str, Any]) -> str | None:
    """The comment's text in livetopic's own shape: ``text``, else ``content`` (None when neither is a string)."""
    for key in TEXT_FIELDS:
        value = row.get(key)
        if isinstance(value, str):
            return value
    return None


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return value.strip().lower() in ("true", "false")
    return True


def label_columns(row: dict[str, Any]) -> list[str]:
    """The columns of ``row`` that can be labels (teacher scores): numbers (or number-like strings, booleans)
    that are not :data:`METADATA_COLUMNS`."""
    return [
        k
        for k, v in row.items()
        if k not in METADATA_COLUMNS and (isinstance(v, int | float) or (isinstance(v, str) and _is_number(v)))
    ]


def to_record(row: dict[str, Any], where: str) -> Record:
    """The input-stream fields of a row in livetopic's own shape: its text, and ``channel``/``user``/``ts``/
    ``id`` where present (``ts`` from the chat exports' ``time`` when there is no ``ts``)."""
    text = row.get("text", row.get("content"))
    if text is None:
        raise unknown_shape(where, row)
    fields = {"text": str(text)}
    for key in PASSTHROUGH_FIELDS:
        if row.get(key) not in (None, ""):
            fields[key] = str(row[key])
    if "ts" not in fields and row.get("time") not in (None, ""):
        fields["ts"] = str(row["time"])
    return Record(fields, parse_offset(fields.get("ts", "")))


def to_retraction(row: dict[str, Any], where: str) -> Retraction:
    """A retraction written in livetopic's own shape: ``kind=retract`` and ``target_id`` (a deletion) or
    ``target_author_id`` (a ban); ``action``, ``id``, ``channel``, ``ts`` where present."""
    fields = {key: str(row[key]) for key in (*RETRACTION_FIELDS, *PASSTHROUGH_FIELDS) if row.get(key) not in (None, "")}
    fields.pop("text", None)
    target = fields.get("target_id") or fields.get("target_author_id")
    if not target:
        raise InputFileError(f"{where}: a retraction (kind=retract) needs a target_id or a target_author_id")
    fields.setdefault("action", "delete" if "target_id" in fields else "ban")
    fields.setdefault("id", f"{fields['action']}:{target}")
    return Retraction(fields, parse_offset(fields.get("ts", "")))


def describe_row(row: dict[str, Any]) -> str:
    keys = sorted(str(k) for k in row)
    shown = ", ".join(keys[:12]) + (", …" if len(keys) > 12 else "")
    return f"an object with fields {shown}" if keys else "an empty object"


def unknown_shape(where: str, row: dict[str, Any] | str, fmt: str = "auto") -> InputFileError:
    found = describe_row(row) if isinstance(row, dict) else row
    if fmt not in ("auto", "livetopic", "text"):
        return InputFileError(f"{where}: not a {fmt} item (--format {fmt}): found {found}")
    return InputFileError(f"{where}: not a chat shape livetopic knows: found {found}. Accepted: {ACCEPTED}")


@dataclass(frozen=True, slots=True)
class _Shape:
    formats: frozenset[str]  # the --format names it answers to
    matches: Callable[[dict[str, Any]], bool]
    convert: Callable[[dict[str, Any]], list[Converted]]


_SCRAPERS: tuple[_Shape, ...] = (
    _Shape(frozenset({"yt-dlp", "pytchat"}), ytdlp.matches, ytdlp.convert),  # pytchat's JsonfileArchiver too
    _Shape(frozenset({"chat-downloader"}), chatdownloader.matches, chatdownloader.convert),
    _Shape(frozenset({"pytchat"}), pytchat.matches, pytchat.convert),
)


def convert_row(row: dict[str, Any], where: str, fmt: str = "auto") -> list[Converted]:
    """One row → its comments, retractions and skipped items (livetopic's own shape first: ``text``/``content``,
    or ``kind=retract``), of the shapes ``fmt`` allows."""
    if fmt in ("auto", "livetopic", "text"):
        if row.get("kind") == "retract" and row.get("text") is None:
            return [to_retraction(row, where)]
        if text_of(row) is not None or row.get("text") is not None or row.get("content") is not None:
            return [to_record(row, where)]
    for shape in _SCRAPERS:
        if (fmt == "auto" or fmt in shape.formats) and shape.matches(row):
            return shape.convert(row)
    raise unknown_shape(where, row, fmt)


# What a scraper's converter may raise on a row of its shape with values of unexpected types or ranges (a
# timestamp out of range, a number where an object was expected).
_CONVERSION_ERRORS = (ArithmeticError, AttributeError, LookupError, OSError, TypeError, ValueError)


def _utf8(fields: dict[str, str]) -> bool:
    try:
        for key, value in fields.items():
            key.encode("utf-8")
            value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_row(row: object, where: str, fmt: str = "auto") -> list[Converted]:
    """:func:`convert_row` for rows read from outside, never raising: a row that is not an object, has no
    known shape, cannot be converted, or carries text that is not UTF-8 (a lone surrogate written as a JSON
    escape, which Redis could not be sent) is one :class:`~.records.Unreadable` item."""
    if not isinstance(row, dict):
        return [Unreadable(where, f"expected a JSON object, got {type(row).__name__}")]
    try:
        items = convert_row(row, where, fmt)
    except InputFileError as exc:
        return [Unreadable(where, str(exc).removeprefix(f"{where}: "))]
    except _CONVERSION_ERRORS as exc:
        return [Unreadable(where, f"cannot convert the row ({type(exc).__name__}: {exc})")]
    if any(isinstance(item, Record | Retraction) and not _utf8(item.fields) for item in items):
        return [Unreadable(where, "not UTF-8 text (a lone surrogate)")]
    return items
