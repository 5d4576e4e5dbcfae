"""Complete lines in, comments out: the reader of pipes (``push -``) and of files still being written
(``push --follow``). The first non-blank line fixes the format: a JSON object (JSONL in any known shape,
YouTube actions one a line; also each item of a followed JSON list, see :mod:`worker.sources.tail`), a CSV
header (then one row a line), or else plain text, one comment a line — unless that line is another tool's text
output (:mod:`.textlogs`) or a JSON list: then every line is refused (``--format text`` reads any line as a
comment). A line that cannot be read (not UTF-8, invalid JSON or CSV, not a chat shape) is one
:class:`Unreadable` item: the reader skips it and goes on (a producer never stops on one bad line)."""

from __future__ import annotations

import csv
import json

from .files import csv_header, csv_row, fill_channel
from .records import Converted, Record, Retraction, Unreadable, not_utf8
from .shapes import read_row
from .textlogs import foreign_text

__all__ = ["LineDecoder"]

JSON_LIST = (
    "a JSON list cannot be read line by line: push the file whole (push FILE) or follow it (push --follow FILE); "
    "a pipe takes JSONL, one object a line"
)


class LineDecoder:
    """``decode(line, number)`` → the comments, retractions and skipped items of one complete line. ``where``
    names the source in errors; ``channel`` fills in the channel of entries that have none; ``fmt`` is
    ``push --format``; ``items``: the numbers count the items of a JSON list, not lines."""

    def __init__(self, where: str, channel: str | None = None, fmt: str = "auto", *, items: bool = False) -> None:
        self.where, self.channel, self.fmt, self.items = where, channel, fmt, items
        self.format: str | None = None  # "json", "csv", "text" or "refused", once the first non-blank line is seen
        self.header: list[str] | None = None
        self.refusal = ""

    def prime(self, line: str) -> None:
        """Learn the format (and a CSV header) from the first line of a file resumed past it."""
        if self.format is None and line.strip():
            self._choose(line.lstrip("\ufeff"))

    def _refuse(self, reason: str) -> bool:
        self.format, self.refusal = "refused", reason
        return False

    def _choose(self, line: str) -> bool:
        """Fix the format from ``line``; True if the line was a CSV header (no comment in it)."""
        if self.fmt == "text":
            self.format = "text"
            return False
        stripped = line.lstrip()
        if self.items or stripped.startswith("{"):  # an item of a JSON list is JSON, whatever it holds
            self.format = "json"
            return False
        if stripped.startswith("["):
            return self._refuse(JSON_LIST)
        self.header = csv_header(line)
        if self.header is not None:
            self.format = "csv"
            return True
        foreign = foreign_text([line])
        if foreign is not None:
            return self._refuse(foreign)
        if self.fmt not in ("auto", "livetopic"):
            return self._refuse(f"not a {self.fmt} stream (--format {self.fmt}): plain text")
        self.format = "text"
        return False

    def decode(self, line: str | bytes, number: int) -> list[Converted]:
        """The comments, retractions and skipped items of one complete line (``bytes``: decoded here, UTF-8)."""
        where = f"{self.where} item {number}" if self.items else f"{self.where}:{number}"
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return [not_utf8(where, exc.object[exc.start])]
        line = line.rstrip("\r\n")
        if number == 1:
            line = line.lstrip("\ufeff")
        if not line.strip():
            return []
        if self.format is None and self._choose(line):
            return []
        items = self._convert(line, where)
        for item in items:
            if isinstance(item, Record | Retraction):
                fill_channel(item, self.channel)
        return items

    def _convert(self, line: str, where: str) -> list[Converted]:
        if self.format == "refused":
            return [Unreadable(where, self.refusal)]
        if self.format == "json":
            try:
                row = json.loads(line)
            except ValueError as exc:
                return [Unreadable(where, f"invalid JSON: {exc}")]
            return read_row(row, where, self.fmt)
        if self.format == "csv" and self.header is not None:
            try:
                values = next(csv.reader([line]), [])
            except csv.Error as exc:
                return [Unreadable(where, f"invalid CSV: {exc}")]
            return read_row(csv_row(self.header, values), where, self.fmt)
        return read_row({"text": line}, where, self.fmt)
