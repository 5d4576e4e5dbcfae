"""Complete lines in, comments out: the reader of pipes (``push -``) and of files still being written
(``push --follow``). The first non-blank line fixes the format: a JSON object (JSONL in any known shape,
yt-dlp's live chat lines), a CSV header (then one row a line), or else plain text, one comment a line. A line
that cannot be read (not UTF-8, invalid JSON or CSV, not a chat shape) is one :class:`Unreadable` item: the
reader skips it and goes on (a producer never stops on one bad line)."""

from __future__ import annotations

import csv
import json

from .files import csv_header, csv_row, fill_channel
from .records import Converted, Record, Unreadable, not_utf8
from .shapes import read_row

__all__ = ["LineDecoder"]


class LineDecoder:
    """``decode(line, number)`` → the comments and skipped items of one complete line. ``where`` names the
    source in errors; ``channel`` fills in the channel of comments that have none."""

    def __init__(self, where: str, channel: str | None = None) -> None:
        self.where, self.channel = where, channel
        self.format: str | None = None  # "json", "csv" or "text", once the first non-blank line is seen
        self.header: list[str] | None = None

    def prime(self, line: str) -> None:
        """Learn the format (and a CSV header) from the first line of a file resumed past it."""
        if self.format is None and line.strip():
            self._choose(line.lstrip("\ufeff"))

    def _choose(self, line: str) -> bool:
        """Fix the format from ``line``; True if the line was a CSV header (no comment in it)."""
        if line.lstrip().startswith("{"):
            self.format = "json"
            return False
        self.header = csv_header(line)
        self.format = "csv" if self.header is not None else "text"
        return self.header is not None

    def decode(self, line: str | bytes, number: int) -> list[Converted]:
        """The comments and skipped items of one complete line (``bytes``: decoded here, UTF-8)."""
        where = f"{self.where}:{number}"
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
            if isinstance(item, Record):
                fill_channel(item, self.channel)
        return items

    def _convert(self, line: str, where: str) -> list[Converted]:
        if self.format == "json":
            try:
                row = json.loads(line)
            except ValueError as exc:
                return [Unreadable(where, f"invalid JSON: {exc}")]
            return read_row(row, where)
        if self.format == "csv" and self.header is not None:
            try:
                values = next(csv.reader([line]), [])
            except csv.Error as exc:
                return [Unreadable(where, f"invalid CSV: {exc}")]
            return read_row(csv_row(self.header, values), where)
        return read_row({"text": line}, where)
