"""Input files: the one reader of comment files for ``push``, ``bench``, ``train``, ``evaluate`` and ``label``.

A PATH may be a directory: its files of :data:`SUFFIXES`, recursively, sorted, hidden ones skipped. A file's
container is told from its content, not its name: a JSON list; JSON objects one a line (JSONL, yt-dlp's
live chat); CSV (a header row with a ``text``, ``content`` or ``message`` column, or chat-downloader's
flattened ``author.name`` columns); else plain text, one comment a line. The name only breaks a tie: a
``.json``/``.jsonl``/``.csv`` file that is not what its name says is an error, not plain text, and so is plain
text that is another tool's output (:mod:`.textlogs`: chat-downloader's ``.txt``, pytchat's TSV, other logs)
unless ``fmt`` is ``text``. Files are UTF-8, with or without a byte-order mark. Each row is then told apart by
its fields (:mod:`.shapes`). Every error is an :class:`~worker.errors.InputFileError` that names the file (and
line).

Rows that cannot be read (a line that is not UTF-8, invalid JSON or CSV, not a chat shape): :func:`read_inputs`
(``push``, ``bench``…) skips each with a WARNING naming its file and line, and reads the rest, as ``push -``
and ``push --follow`` do; a file none of whose rows can be read is an error. :func:`read_rows` (training,
reports) is strict: the first such row is an error.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputFileError, LivetopicError
from .chatdownloader import unflatten
from .records import Entry, Reading, Record, Retraction, Unreadable, not_utf8
from .shapes import ACCEPTED, read_row
from .textlogs import SAMPLE_LINES, foreign_text
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
Row = tuple[str, Any]  # where it is ("path:line", or "path item N" in a JSON list), and the row (or Unreadable)


@dataclass(frozen=True, slots=True)
class InputFile:
    path: Path
    group: str  # the game: the file's name without suffix (relative to a directory given)


# --- files ----------------------------------------------------------------------------------------
def json_object(
    path: Path, error: type[LivetopicError] = InputFileError, name: str | None = None, *, encoding: str = "utf-8"
) -> dict[str, Any]:
    """The JSON object that ``path`` holds; ``error`` naming the file (as ``name``, else its path) where it cannot
    be read or holds something else."""
    where = name or str(path)
    try:
        value = json.loads(path.read_text(encoding=encoding))
    except (OSError, ValueError) as exc:
        raise error(f"{where}: unreadable: {exc}") from exc
    if not isinstance(value, dict):
        raise error(f"{where}: not a JSON object")
    return value


def expand_paths(paths: Iterable[Path | str], suffixes: Sequence[str] | None = SUFFIXES) -> list[InputFile]:
    """The files of ``paths``: files as given, directories expanded to their files with ``suffixes``.

    ``suffixes`` None accepts any file named explicitly (directories still expand to :data:`SUFFIXES`)."""
    allowed = tuple(suffixes) if suffixes is not None else None
    out: list[InputFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            wanted = allowed or SUFFIXES
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in wanted
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                raise InputFileError(f"{path}: directory has no {'/'.join(wanted)} files")
            out.extend(InputFile(f, f.relative_to(path).with_suffix("").as_posix()) for f in files)
        elif path.is_file():
            if allowed is not None and path.suffix.lower() not in allowed:
                raise InputFileError(
                    f"{path}: unsupported file type {path.suffix!r}; expected one of {', '.join(allowed)}"
                )
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


def _json_list(path: Path, text: str) -> list[Row] | None:
    try:
        items = json.loads(text)
    except ValueError as exc:
        if path.suffix.lower() == ".json":
            raise InputFileError(f"{path}: invalid JSON: {exc}") from exc
        return None
    if not isinstance(items, list):
        raise InputFileError(f"{path}: expected a JSON list of comment objects, got {type(items).__name__}")
    return [(f"{path} item {number}", item) for number, item in enumerate(items, 1)]


def _undecoded(where: str, raw: str) -> Unreadable | None:
    """An :class:`Unreadable` when ``raw`` (decoded with ``surrogateescape``) held bytes that are not UTF-8."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        return not_utf8(where, ord(raw[exc.start]) - 0xDC00)  # surrogateescape: U+DC80..U+DCFF for 0x80..0xFF
    return None


def _json_lines(path: Path, lines: list[str]) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            rows.append((where, _undecoded(where, line) or json.loads(line)))
        except ValueError as exc:
            rows.append((where, Unreadable(where, f"invalid JSON: {exc}")))
    return rows


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _unterminated(lines: list[str]) -> bool:
    """True when the CSV record of ``lines`` opens a quoted field that never closes."""
    try:
        for _ in csv.reader(lines, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _csv_records(path: Path, lines: list[str]) -> Iterator[tuple[int, list[str] | Unreadable]]:
    """(first line, values) of each CSV record (a quoted field may span lines). A record the CSV reader
    refuses is :class:`Unreadable`; a quote that never closes would swallow the rest of the file, so that
    line is read alone (as ``push --follow`` reads it) and the records after it as usual."""
    start = 0
    while start < len(lines):
        reader = csv.reader(lines[start:])
        while True:
            first = reader.line_num
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start + first + 1, Unreadable(f"{path}:{start + first + 1}", f"invalid CSV: {exc}")
                continue
            raw = lines[start + first : start + reader.line_num]
            if start + reader.line_num == len(lines) and len(raw) > 1 and _unterminated(raw):
                yield start + first + 1, next(csv.reader([raw[0].rstrip("\r\n")]), [])
                start += first + 1
                break
            yield start + first + 1, _undecoded(f"{path}:{start + first + 1}", "".join(raw)) or values


def _csv_rows(path: Path, text: str) -> list[Row]:
    rows: list[Row] = []
    header: list[str] | None = None
    for number, values in _csv_records(path, io.StringIO(text, newline="").readlines()):
        if isinstance(values, Unreadable):
            rows.append((values.where, values))
        elif header is None:
            header = [c.strip() for c in values] if values else None
        elif values:
            rows.append((f"{path}:{number}", csv_row(header, values)))
    return rows


def _text_lines(path: Path, lines: list[str]) -> list[Row]:
    return [
        (f"{path}:{number}", _undecoded(f"{path}:{number}", line) or {"text": line})
        for number, line in enumerate(lines, 1)
        if line.strip()
    ]


def _container_rows(path: Path, text: str, fmt: str = "auto") -> list[Row]:
    if fmt == "text":
        return _text_lines(path, text.splitlines())
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
        raise InputFileError(
            f"{path}: CSV needs a 'text' column (or 'content', 'message'); found header "
            f"{first[:120]!r}. Accepted: {ACCEPTED}"
        )
    if fmt not in ("auto", "livetopic"):
        raise InputFileError(f"{path}: not a {fmt} file (--format {fmt}): plain text (first line: {first[:60]!r})")
    foreign = foreign_text([line for line in lines[: SAMPLE_LINES * 4] if line.strip()])
    if foreign is not None:
        raise InputFileError(f"{path}: {foreign}")
    return _text_lines(path, lines)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read: {exc}") from exc


def read_rows(path: Path, data: bytes | None = None) -> list[dict[str, Any]]:
    """The rows of one file as dictionaries (``data``: its bytes, when already read). Strict, for training
    and reports: the first row that cannot be read is an error naming its file and line."""
    rows = []
    for where, row in _container_rows(path, decode(str(path), _read_bytes(path) if data is None else data)):
        if isinstance(row, Unreadable):
            raise InputFileError(str(row))
        if not isinstance(row, dict):
            raise InputFileError(f"{where}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def _tolerant_rows(path: Path, fmt: str) -> list[Row]:
    """The rows of one file for ``push``, each line that is not UTF-8 an :class:`Unreadable` row (only a
    JSON list, one document, must be UTF-8 as a whole)."""
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("utf-8-sig", "surrogateescape")
        if text.lstrip().startswith("["):
            decode(str(path), data)  # raises: a JSON document that is not UTF-8
    return _container_rows(path, text, fmt)


# --- comments -------------------------------------------------------------------------------------
def fill_channel(entry: Entry, channel: str | None) -> Entry:
    """Give ``entry`` a channel where it has none: ``channel`` (``--channel``, the file's or the chat's own),
    else the source's channel id it carries (Twitch's room id)."""
    value = channel or entry.fields.get("channel_id")
    if value and "channel" not in entry.fields:
        entry.fields["channel"] = value
    return entry


def _read_file(reading: Reading, item: InputFile, channel: str | None, limit: int | None, fmt: str) -> None:
    """Add the entries of one file to ``reading`` (up to ``limit`` comments in all), skipping the rows that
    cannot be read (each named in a WARNING). A file none of whose rows can be read is an error: not a chat
    file."""
    file_channel = channel or video_id_of(item.path)
    held: list[Unreadable] = []  # the unreadable rows before the first readable one
    readable = False
    for where, row in _tolerant_rows(item.path, fmt):
        for one in [row] if isinstance(row, Unreadable) else read_row(row, where, fmt):
            if isinstance(one, Unreadable) and not readable:
                held.append(one)
                continue
            if not readable:
                readable = True
                reading.add(held)
            if isinstance(one, Record | Retraction):
                if limit is not None and reading.comments >= limit:
                    return
                fill_channel(one, file_channel)
            reading.add([one])
    if held and not readable:
        raise InputFileError(
            f"{item.path}: cannot read a single comment of it ({len(held)} unreadable "
            f"line{'s' if len(held) != 1 else ''}); the first: {held[0]}"
        )


def read_inputs(
    paths: Iterable[Path | str], *, channel: str | None = None, limit: int | None = None, fmt: str = "auto"
) -> Reading:
    """The comments and retractions of ``paths`` in order (each file's own order), at most ``limit`` comments,
    the chat items skipped (no viewer text), by kind, and the lines skipped as unreadable (each named in a
    WARNING). ``channel`` fills in the channel of entries that have none, else the video id where the file name
    has one (yt-dlp's ``<id>.live_chat.json``), else the channel id an entry carries. ``fmt``: ``push --format``
    (:data:`~.shapes.FORMATS`)."""
    reading = Reading()
    for item in expand_paths(paths, suffixes=None):
        _read_file(reading, item, channel, limit, fmt)
        if limit is not None and reading.comments >= limit:
            break
    return reading


def read_records(paths: Iterable[Path | str], *, channel: str | None = None, limit: int | None = None) -> list[Record]:
    """The comments of ``paths`` (see :func:`read_inputs`), without the count of skipped items."""
    return read_inputs(paths, channel=channel, limit=limit).records
