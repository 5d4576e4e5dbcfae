"""Input files: the one reader of comment files for ``push``, ``bench``, ``train``, ``evaluate`` and ``label``.

A PATH may be a directory: its files of :data:`SUFFIXES`, recursively, sorted, hidden ones skipped. A file's
container is told from its content, not its name: a JSON list; JSON objects one a line (JSONL, yt-dlp's
live chat); CSV (a header row with a ``text``, ``content`` or ``message`` column, or chat-downloader's
flattened ``author.name`` columns); else plain text, one comment a line. The name only breaks a tie: a
``.json``/``.jsonl``/``.csv`` file that is not what its name says is an error, not plain text. Files are
UTF-8, with or without a byte-order mark. Each row is then told apart by its fields (:mod:`.shapes`).
Every error is an :class:`~worker.errors.InputFileError` that names the file (and line).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputFileError
from .chatdownloader import unflatten
from .records import Reading, Record
from .shapes import ACCEPTED, convert_row
from .ytdlp import video_id_of

__all__ = [
    "LABELLED_SUFFIXES",
    "SUFFIXES",
    "InputFile",
    "decode",
    "expand_paths",
    "read_inputs",
    "read_records",
    "read_rows",
]

SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".ndjson", ".csv", ".txt")
LABELLED_SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".ndjson", ".csv")  # files that can carry labels
CSV_TEXT_COLUMNS = ("text", "content", "message")


@dataclass(frozen=True, slots=True)
class InputFile:
    path: Path
    group: str  # the game: the file's name without suffix (relative to a directory given)


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


def decode(where: str, data: bytes) -> str:
    """UTF-8 text, a byte-order mark dropped."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{where}: cannot read: not UTF-8 text ({exc})") from exc


def csv_header(line: str) -> list[str] | None:
    """The columns of a CSV header line that livetopic can read (a text column, or chat-downloader's
    flattened fields); None for anything else."""
    try:
        columns = next(csv.reader([line]), [])
    except csv.Error:
        return None
    names = [c.strip() for c in columns]
    if len(names) >= 2 and (set(CSV_TEXT_COLUMNS) & set(names) or "author.name" in names):
        return names
    return None


def csv_row(header: list[str], values: list[str]) -> dict[str, Any]:
    """A CSV row as an object; chat-downloader's dotted columns nested again."""
    row = dict(zip(header, values, strict=False))
    return unflatten(row) if any("." in name for name in header) else row


def _json_list(path: Path, text: str) -> list[Any] | None:
    try:
        rows = json.loads(text)
    except ValueError as exc:
        if path.suffix.lower() == ".json":
            raise InputFileError(f"{path}: invalid JSON: {exc}") from exc
        return None
    if not isinstance(rows, list):
        raise InputFileError(f"{path}: expected a JSON list of comment objects, got {type(rows).__name__}")
    return rows


def _json_lines(path: Path, lines: list[str]) -> list[Any]:
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise InputFileError(f"{path}:{number}: invalid JSON: {exc}") from exc
    return rows


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _csv_rows(path: Path, text: str) -> list[Any]:
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [c.strip() for c in next(reader)]
        return [csv_row(header, values) for values in reader if values]
    except csv.Error as exc:
        raise InputFileError(f"{path}: invalid CSV: {exc}") from exc


def _container_rows(path: Path, text: str) -> list[Any]:
    suffix = path.suffix.lower()
    stripped = text.lstrip()
    if stripped.startswith("["):
        rows = _json_list(path, text)
        if rows is not None:
            return rows
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if _is_json_object(first) or (first.lstrip().startswith("{") and suffix in (".jsonl", ".ndjson")):
        return _json_lines(path, lines)
    if stripped.startswith("{") and suffix == ".json":
        raise InputFileError(f"{path}: a single JSON object; expected a list of items or one object a line")
    if suffix in (".json", ".jsonl", ".ndjson"):
        raise InputFileError(f"{path}: not JSON (first line: {first[:60]!r}). Accepted: {ACCEPTED}")
    if csv_header(first) is not None:
        return _csv_rows(path, text)
    if suffix == ".csv":
        raise InputFileError(f"{path}: CSV needs a 'text' column (or 'content', 'message'); found header "
                             f"{first[:120]!r}. Accepted: {ACCEPTED}")
    return [{"text": line} for line in lines if line.strip()]


def read_rows(path: Path, data: bytes | None = None) -> list[dict[str, Any]]:
    """The rows of one file as dictionaries (``data``: its bytes, when already read)."""
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputFileError(f"{path}: cannot read: {exc}") from exc
    rows = _container_rows(path, decode(str(path), data))
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise InputFileError(f"{path}: row {number}: expected a JSON object, got {type(row).__name__}")
    return rows


# --- comments -------------------------------------------------------------------------------------
def fill_channel(record: Record, channel: str | None) -> Record:
    if channel and "channel" not in record.fields:
        record.fields["channel"] = channel
    return record


def read_inputs(paths: Iterable[Path | str], *, channel: str | None = None, limit: int | None = None) -> Reading:
    """The comments of ``paths`` in order (each file's own order), at most ``limit``, and the chat items
    skipped (no viewer text), by kind. ``channel`` fills in the channel of comments that have none, else the
    video id where the file name has one (yt-dlp's ``<id>.live_chat.json``)."""
    reading = Reading()
    for item in expand_paths(paths, suffixes=None):
        file_channel = channel or video_id_of(item.path)
        for number, row in enumerate(read_rows(item.path), 1):
            for converted in convert_row(row, f"{item.path}:{number}"):
                if isinstance(converted, Record):
                    fill_channel(converted, file_channel)
                reading.add([converted])
                if limit is not None and len(reading.records) >= limit:
                    return reading
    return reading


def read_records(paths: Iterable[Path | str], *, channel: str | None = None, limit: int | None = None) -> list[Record]:
    """The comments of ``paths`` (see :func:`read_inputs`), without the count of skipped items."""
    return read_inputs(paths, channel=channel, limit=limit).records
