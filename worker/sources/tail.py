"""A file read as it grows, like ``tail -F``: complete lines only (a line still being written waits), the
position of every line known, and every rewrite of the file noticed: truncation, replacement (a new file at the
path), and truncation followed by new content within one poll (``copytruncate`` with a busy writer), which
sizes alone cannot tell from growth. Plain file I/O: no Redis, no asyncio (the caller polls).

What was consumed is fingerprinted twice: the file's first bytes (``head``) and the bytes just before the
position (``anchor``). Each batch of lines is checked after it is read: if the file no longer holds the same
bytes at those places, the batch may come from the new content (a fragment of a line, or lines after an
unread beginning), so it is dropped and the file is read again from its start. The fingerprints are also kept
in the checkpoint, so a restarted reader resumes only in the file it had read.

A file that is a JSON list of objects (chat-downloader's ``.json``: its writer rewrites the closing ``]`` at
every item, ``[{…}, {…}]`` on one line or indented over many) is read item by item instead of line by line:
each complete object is a unit, the separators before it consumed with it and the closing ``]`` never, so the
bytes the writer rewrites always lie after the position."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import InputFileError

__all__ = ["ANCHOR_BYTES", "HEAD_BYTES", "Line", "TailedFile"]

HEAD_BYTES = 4096  # how much of a file's beginning identifies it
ANCHOR_BYTES = 256  # how much of what precedes the position identifies it (a rewrite that kept the beginning)
READ_BYTES = 65536  # one read; every read is at an explicit offset (no buffer that could hold a file's old bytes)
_TOKEN = re.compile(rb'["{}\[\]]')
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # a JSON string after its opening quote
_SCALAR = re.compile(rb"[^,\]\s]+(?=[,\]\s])")
_BETWEEN = b" \t\r\n,["  # what may precede an item of a JSON list: the opening bracket, separators


@dataclass(frozen=True, slots=True)
class Line:
    raw: bytes  # the line as written, its newline included (decoding is the reader's: a bad line is skipped)
    number: int  # 1-based line number in the file (the item number in a JSON list)
    end: int  # the byte offset just past the line


@dataclass(frozen=True, slots=True)
class _Position:
    offset: int  # bytes consumed (complete lines)
    line: int  # complete lines consumed
    head: bytes  # the file's first HEAD_BYTES bytes, as far as consumed
    anchor: bytes  # the last ANCHOR_BYTES bytes consumed, ending at offset


_START = _Position(0, 0, b"", b"")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _value_end(data: bytes, start: int) -> int | None:
    """The end of the JSON value that starts at ``data[start]``, or None while it is incomplete."""
    if data[start : start + 1] not in (b"{", b"[", b'"'):
        scalar = _SCALAR.match(data, start)
        return scalar.end() if scalar else None
    depth, at = 0, start
    while True:
        token = _TOKEN.search(data, at)
        if token is None:
            return None
        if token.group() == b'"':
            rest = _STRING_REST.match(data, token.end())
            if rest is None:
                return None
            at = rest.end()
            if depth == 0:
                return at
            continue
        depth += 1 if token.group() in (b"{", b"[") else -1
        at = token.end()
        if depth == 0:
            return at


def _next_item(pending: bytes) -> tuple[int, bytes] | None:
    """(bytes consumed, the item) of the next complete item of a JSON list in ``pending``; None while there is
    none yet (the closing ``]`` is never consumed: the writer rewrites it)."""
    start = len(pending) - len(pending.lstrip(_BETWEEN))
    if start == len(pending) or pending[start : start + 1] == b"]":
        return None
    end = _value_end(pending, start)
    return None if end is None else (end, pending[start:end])


class TailedFile:
    """``read_lines()`` gives the complete lines added since the last call (none that the file no longer
    holds); ``changed()`` tells whether the file was truncated, rewritten or replaced (then :meth:`restart`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.at = _START
        self._fh: BinaryIO | None = None  # unbuffered: read with os.pread at the position
        self._ino: tuple[int, int] | None = None
        self.json_list: bool | None = None  # read item by item (a JSON list); None until the file shows which

    @property
    def offset(self) -> int:
        return self.at.offset

    @property
    def line(self) -> int:
        return self.at.line

    # --- where we stand -------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, str]:
        """The position after the lines consumed so far, and what identifies the file's content."""
        at = self.at
        return {
            "path": str(self.path),
            "offset": str(at.offset),
            "line": str(at.line),
            "head_len": str(len(at.head)),
            "head_sha": _sha(at.head),
            "anchor_len": str(len(at.anchor)),
            "anchor_sha": _sha(at.anchor),
        }

    def resume(self, stored: dict[str, str]) -> str:
        """Start at ``stored`` (a :meth:`checkpoint`) when the file still holds what was read then (its
        beginning, and the bytes just before the position); else at the start. Returns what was done."""
        self._open()
        if not stored or self._fh is None:
            return "from the start"
        at = self._stored(stored)
        if at is None:
            return "from the start (the file is not the one read before: replaced, truncated or rewritten)"
        self.at = at
        return f"from line {at.line + 1} (byte {at.offset})"

    def _stored(self, stored: dict[str, str]) -> _Position | None:
        """The position ``stored`` when the open file still holds what it fingerprints, else None."""
        assert self._fh is not None
        try:
            offset, line = int(stored.get("offset", 0)), int(stored.get("line", 0))
            head_len, anchor_len = int(stored.get("head_len", 0)), int(stored.get("anchor_len", 0))
        except ValueError:
            return None
        if not (0 <= head_len <= HEAD_BYTES and 0 <= anchor_len <= min(ANCHOR_BYTES, offset)):
            return None
        head, anchor = self._read_at(0, head_len), self._read_at(offset - anchor_len, anchor_len)
        if (
            os.fstat(self._fh.fileno()).st_size < offset
            or len(head) != head_len
            or len(anchor) != anchor_len
            or _sha(head) != stored.get("head_sha")
            or _sha(anchor) != stored.get("anchor_sha", _sha(b""))
        ):
            return None
        return _Position(offset, line, head, anchor)

    def first_line(self) -> bytes | None:
        """The file's first line (a CSV header, when resuming past it)."""
        if self._fh is None or self.offset == 0:
            return None
        with open(self.path, "rb") as fh:
            return fh.readline()

    # --- reading --------------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            fh = open(self.path, "rb", buffering=0)  # noqa: SIM115 - kept open while the file grows
        except FileNotFoundError:
            return
        except OSError as exc:
            raise InputFileError(f"{self.path}: cannot read: {exc}") from exc
        if self._fh is not None:
            self._fh.close()
        st = os.fstat(fh.fileno())
        self._fh, self._ino = fh, (st.st_dev, st.st_ino)

    def _read_at(self, offset: int, size: int) -> bytes:
        assert self._fh is not None
        return os.pread(self._fh.fileno(), size, offset) if size > 0 and offset >= 0 else b""

    def _holds(self, at: _Position) -> bool:
        """Whether the open file still holds what ``at`` consumed: the same beginning, the same bytes before
        the position."""
        return (
            self._read_at(0, len(at.head)) == at.head
            and self._read_at(at.offset - len(at.anchor), len(at.anchor)) == at.anchor
        )

    def is_json_list(self) -> bool | None:
        """Whether the file is a JSON list of objects ('[' then '{' or ']'), from its first bytes; None while
        they do not tell yet."""
        if self.json_list is None:
            first = self._read_at(0, HEAD_BYTES).lstrip(b" \t\r\n\xef\xbb\xbf")
            if first[:1] != b"[":
                self.json_list = False if first else None
            elif first[1:].lstrip()[:1]:
                self.json_list = first[1:].lstrip()[:1] in (b"{", b"]")
        return self.json_list

    def _unit(self, pending: bytes, final: bool) -> tuple[int, bytes] | None:
        """(bytes consumed, the unit's bytes) of the next complete line (or item of a JSON list) in ``pending``."""
        if self.json_list:
            return _next_item(pending)
        newline = pending.find(b"\n")
        if newline < 0:
            return (len(pending), pending) if final and pending else None
        return newline + 1, pending[: newline + 1]

    def read_lines(self, max_lines: int = 500, final: bool = False) -> list[Line]:
        """Complete lines (or items of a JSON list) added since the last call (at most ``max_lines``);
        ``final``: the file will not grow any more, so a last line without a newline counts too. None at all
        when the file no longer holds what was read before them (then :meth:`changed` says how it changed)."""
        if self._fh is None:
            self._open()
            if self._fh is None:
                return []
        if self.is_json_list() is None:
            return []
        before = at = self.at
        lines: list[Line] = []
        pending = b""  # read past the last complete unit (a line still being written waits for its newline)
        while len(lines) < max_lines:
            unit = self._unit(pending, final=False)
            if unit is None:
                chunk = self._read_at(at.offset + len(pending), READ_BYTES)
                if chunk:
                    pending += chunk
                    continue
                unit = self._unit(pending, final)
                if unit is None:
                    break
            size, raw = unit
            consumed, pending = pending[:size], pending[size:]
            head = at.head if len(at.head) >= HEAD_BYTES else (at.head + consumed)[:HEAD_BYTES]
            at = _Position(at.offset + size, at.line + 1, head, (at.anchor + consumed)[-ANCHOR_BYTES:])
            lines.append(Line(raw, at.line, at.offset))
        if lines and not self._holds(before):  # rewritten while we read: these may be fragments of new lines
            return []
        self.at = at
        return lines

    def changed(self) -> str | None:
        """'truncated' (shorter than what was read), 'rewritten' (what was read is no longer there: a
        truncation followed by new content) or 'replaced' (another file at the path), else None. Then read the
        old file's last lines if it was replaced (``final=True``: it will not grow) and :meth:`restart`."""
        if self._fh is None:
            return None
        if os.fstat(self._fh.fileno()).st_size < self.offset:
            return "truncated"
        if not self._holds(self.at):
            return "rewritten"
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None  # gone for now (being rotated): keep the old one until something appears
        return "replaced" if (st.st_dev, st.st_ino) != self._ino else None

    def restart(self, reopen: bool) -> None:
        """Read again from the beginning: of what is at the path now (``reopen``), or of the same file."""
        self.at = _START
        self.json_list = None
        if reopen:
            self._open()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
