"""Complete lines in, comments out: the reader of pipes (``push -``) and of files still being written
(``push --follow``). The first non-blank line fixes the format: a JSON object (JSONL in any known shape,
yt-dlp's live chat lines), a CSV header (then one row a line), or else plain text, one comment a line."""

from __future__ import annotations

import csv
import json

from ..errors import InputFileError
from .files import csv_header, csv_row, fill_channel
from .records import Converted, Record
from .shapes import convert_row

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

    def decode(self, line: str, number: int) -> list[Converted]:
        line = line.rstrip("\r\n")
        if number == 1:
            line = line.lstrip("\ufeff")
        if not line.strip():
            return []
        if self.format is None and self._choose(line):
            return []
        where = f"{self.where}:{number}"
        if self.format == "json":
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InputFileError(f"{where}: invalid JSON: {exc}") from exc
            if not isinstance(row, dict):
                raise InputFileError(f"{where}: expected a JSON object, got {type(row).__name__}")
            items = convert_row(row, where)
        elif self.format == "csv" and self.header is not None:
            try:
                values = next(csv.reader([line]), [])
            except csv.Error as exc:
                raise InputFileError(f"{where}: invalid CSV: {exc}") from exc
            items = convert_row(csv_row(self.header, values), where)
        else:
            items = convert_row({"text": line}, where)
        for item in items:
            if isinstance(item, Record):
                fill_channel(item, self.channel)
        return items
