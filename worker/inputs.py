"""Input files: the one reader of comment files for ``push``, ``bench``, ``train``, ``evaluate`` and ``label``.

Shapes (by suffix; a PATH may be a directory: its files of these suffixes, recursively, sorted, hidden ones
skipped):

``.json``
    a JSON list of objects, e.g. the chat export of a game (``time``, ``user``, ``content``, scores);
``.jsonl`` / ``.ndjson``
    one JSON object a line;
``.csv``
    a header row (with a ``text`` or ``content`` column), then one comment a row;
``.txt`` (and, for ``push``, any other file named explicitly)
    one comment a line.

Files are UTF-8, with or without a byte-order mark. A comment's text is its ``text`` field, else
``content``. Every error is an :class:`~worker.errors.InputFileError` that names the file (and line).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputFileError

__all__ = [
    "LABELLED_SUFFIXES",
    "SUFFIXES",
    "InputFile",
    "Record",
    "expand_paths",
    "parse_offset",
    "read_records",
    "read_rows",
    "text_of",
    "to_record",
]

SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".ndjson", ".csv", ".txt")
LABELLED_SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".ndjson", ".csv")  # files that can carry labels
TEXT_FIELDS = ("text", "content")
PASSTHROUGH = ("channel", "user", "ts", "id")


@dataclass(frozen=True, slots=True)
class InputFile:
    path: Path
    group: str  # the game: the file's name without suffix (relative to a directory given)


@dataclass(slots=True)
class Record:
    """One comment as ``push`` sends it: the input-stream fields, and its offset into the broadcast."""

    fields: dict[str, str]
    offset_s: float | None = None  # position in the original broadcast, for --speed replays


# --- files ----------------------------------------------------------------------------------------
def expand_paths(paths: Iterable[Path | str], suffixes: Sequence[str] | None = SUFFIXES) -> list[InputFile]:
    """The files of ``paths``: files as given, directories expanded to their files with ``suffixes``.

    ``suffixes`` None accepts any file named explicitly (directories still expand to :data:`SUFFIXES`)."""
    allowed = tuple(suffixes) if suffixes is not None else None
    out: list[InputFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            wanted = allowed or SUFFIXES
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in wanted
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                raise InputFileError(f"{path}: directory has no {'/'.join(wanted)} files")
            out.extend(InputFile(f, f.relative_to(path).with_suffix("").as_posix()) for f in files)
        elif path.is_file():
            if allowed is not None and path.suffix.lower() not in allowed:
                raise InputFileError(f"{path}: unsupported file type {path.suffix!r}; "
                                     f"expected one of {', '.join(allowed)}")
            out.append(InputFile(path, path.stem))
        else:
            raise InputFileError(f"{path}: no such file or directory")
    if not out:
        raise InputFileError("no input files given")
    return out


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: cannot read: not UTF-8 text ({exc})") from exc


def _json_lines(path: Path, text: str) -> list[Any]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise InputFileError(f"{path}:{number}: invalid JSON: {exc}") from exc
    return rows


def _csv_rows(path: Path, text: str) -> list[Any]:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames or not set(TEXT_FIELDS) & set(reader.fieldnames):
            raise InputFileError(f"{path}: CSV needs a 'text' column (has {reader.fieldnames})")
        return [dict(row) for row in reader]
    except csv.Error as exc:
        raise InputFileError(f"{path}: invalid CSV: {exc}") from exc


def read_rows(path: Path, data: bytes | None = None) -> list[dict[str, Any]]:
    """The rows of one file as dictionaries (``data``: its bytes, when already read)."""
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputFileError(f"{path}: cannot read: {exc}") from exc
    text = _decode(path, data)
    suffix = path.suffix.lower()
    rows: list[Any]
    if suffix == ".json":
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise InputFileError(f"{path}: invalid JSON: {exc}") from exc
        if not isinstance(rows, list):
            raise InputFileError(f"{path}: expected a JSON list of comment objects, got {type(rows).__name__}")
    elif suffix in (".jsonl", ".ndjson"):
        rows = _json_lines(path, text)
    elif suffix == ".csv":
        rows = _csv_rows(path, text)
    else:
        rows = [{"text": line} for line in text.splitlines() if line.strip()]
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise InputFileError(f"{path}: row {number}: expected a JSON object, got {type(row).__name__}")
    return rows


# --- comments -------------------------------------------------------------------------------------
def text_of(row: dict[str, Any]) -> str | None:
    """The comment's text: the ``text`` field, else ``content`` (None when neither is a string)."""
    for key in TEXT_FIELDS:
        value = row.get(key)
        if isinstance(value, str):
            return value
    return None


def parse_offset(value: str) -> float | None:
    """'M:SS', 'MM:SS' or 'H:MM:SS' → seconds; None when it is not such a time."""
    parts = value.strip().split(":")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds


def to_record(row: dict[str, Any], where: str) -> Record:
    """The input-stream fields of one row: its text, and ``channel``/``user``/``ts``/``id`` where present
    (``ts`` from the chat exports' ``time`` when there is no ``ts``)."""
    text = row.get("text", row.get("content"))
    if text is None:
        raise InputFileError(f"{where}: object has neither 'text' nor 'content'")
    fields = {"text": str(text)}
    for key in PASSTHROUGH:
        if row.get(key) not in (None, ""):
            fields[key] = str(row[key])
    if "ts" not in fields and row.get("time") not in (None, ""):
        fields["ts"] = str(row["time"])
    return Record(fields, parse_offset(fields.get("ts", "")))


def read_records(paths: Iterable[Path | str], *, channel: str | None = None, limit: int | None = None) -> list[Record]:
    """The comments of ``paths`` in order (each file's own order), at most ``limit``; ``channel`` fills in
    the channel of comments that have none."""
    records: list[Record] = []
    for item in expand_paths(paths, suffixes=None):
        for number, row in enumerate(read_rows(item.path), 1):
            record = to_record(row, f"{item.path}:{number}")
            if channel and "channel" not in record.fields:
                record.fields["channel"] = channel
            records.append(record)
            if limit is not None and len(records) >= limit:
                return records
    return records
