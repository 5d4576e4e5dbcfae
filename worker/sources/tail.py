"""A file read as it grows, like ``tail -F``: complete lines only (a line still being written waits), the
position of every line known, and truncation or replacement of the file noticed. Plain file I/O: no Redis,
no asyncio (the caller polls)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import InputFileError

__all__ = ["HEAD_BYTES", "Line", "TailedFile"]

HEAD_BYTES = 4096  # how much of a file's beginning identifies it across restarts


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    number: int  # 1-based line number in the file
    end: int  # the byte offset just past the line


class TailedFile:
    """``read_lines()`` gives the complete lines added since the last call; ``changed()`` tells whether the
    file was truncated or replaced (then reading starts again at its beginning)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0  # bytes consumed (complete lines)
        self.line = 0  # complete lines consumed
        self.head = b""  # the file's first HEAD_BYTES bytes, as far as consumed
        self._fh: BinaryIO | None = None
        self._ino: tuple[int, int] | None = None
        self._partial = b""

    # --- where we stand -------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, str]:
        """The position after the lines consumed so far, and what identifies the file's content."""
        return {"path": str(self.path), "offset": str(self.offset), "line": str(self.line),
                "head_len": str(len(self.head)), "head_sha": hashlib.sha256(self.head).hexdigest()}

    def resume(self, stored: dict[str, str]) -> str:
        """Start at ``stored`` (a :meth:`checkpoint`) when the file still begins as it did then and is no
        shorter; else at the start. Returns what was done, for the log."""
        self._open()
        if not stored or self._fh is None:
            return "from the start"
        offset, head_len = int(stored.get("offset", 0)), int(stored.get("head_len", 0))
        self._fh.seek(0)
        head = self._fh.read(head_len)
        size = os.fstat(self._fh.fileno()).st_size
        if size < offset or hashlib.sha256(head).hexdigest() != stored.get("head_sha"):
            self._fh.seek(0)
            return "from the start (the file is not the one read before: replaced or truncated)"
        self.offset, self.line, self.head = offset, int(stored.get("line", 0)), head
        self._fh.seek(offset)
        return f"from line {self.line + 1} (byte {offset})"

    def first_line(self) -> str | None:
        """The file's first line (a CSV header, when resuming past it)."""
        if self._fh is None or self.offset == 0:
            return None
        with open(self.path, "rb") as fh:
            return self._decode(fh.readline(), 1)

    # --- reading --------------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - kept open while the file grows
        except FileNotFoundError:
            return
        except OSError as exc:
            raise InputFileError(f"{self.path}: cannot read: {exc}") from exc
        if self._fh is not None:
            self._fh.close()
        st = os.fstat(fh.fileno())
        self._fh, self._ino, self._partial = fh, (st.st_dev, st.st_ino), b""

    def _decode(self, raw: bytes, number: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{self.path}:{number}: not UTF-8 text ({exc})") from exc

    def read_lines(self, max_lines: int = 500, final: bool = False) -> list[Line]:
        """Complete lines added since the last call (at most ``max_lines``); ``final``: the file will not
        grow any more, so a last line without a newline counts too."""
        if self._fh is None:
            self._open()
            if self._fh is None:
                return []
        lines: list[Line] = []
        while len(lines) < max_lines:
            raw = self._fh.readline()
            if not raw:
                break
            if not raw.endswith(b"\n") and not final:
                self._partial += raw
                continue
            raw, self._partial = self._partial + raw, b""
            if len(self.head) < HEAD_BYTES:
                self.head = (self.head + raw)[:HEAD_BYTES]
            self.offset += len(raw)
            self.line += 1
            lines.append(Line(self._decode(raw, self.line), self.line, self.offset))
        return lines

    def changed(self) -> str | None:
        """'truncated' or 'replaced', else None. Then read the old file's last lines (``final=True``: a
        replaced file will not grow) and :meth:`restart`."""
        if self._fh is None:
            return None
        if os.fstat(self._fh.fileno()).st_size < self.offset + len(self._partial):
            return "truncated"
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None  # gone for now (being rotated): keep the old one until something appears
        return "replaced" if (st.st_dev, st.st_ino) != self._ino else None

    def restart(self, reopen: bool) -> None:
        """Read again from the beginning: of what is at the path now (``reopen``), or of the same file."""
        self.offset, self.line, self.head, self._partial = 0, 0, b"", b""
        if reopen:
            self._open()
        elif self._fh is not None:
            self._fh.seek(0)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
