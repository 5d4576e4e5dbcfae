"""Text for terminals: display width (East Asian wide characters take two columns, combining marks none), and
cutting or padding to a width, so tables of Chinese or Japanese comments and labels line up; whether progress
bars are drawn."""

from __future__ import annotations

import unicodedata

__all__ = ["bars_disabled", "cell", "fit", "pad", "width"]


def bars_disabled(quiet: bool, progress: bool) -> bool | None:
    """tqdm's ``disable``: off with ``quiet``, on with ``progress``, else only where the output is a terminal
    (None: tqdm's own test), so that no progress bar is written into a log file."""
    return True if quiet else (False if progress else None)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal."""
    return sum(_char_width(ch) for ch in text)


def fit(text: str, columns: int) -> str:
    """``text`` on one line, cut to at most ``columns`` (an ellipsis marks a cut)."""
    flat = " ".join(text.split())
    if width(flat) <= columns:
        return flat
    out, used = [], 0
    for ch in flat:
        w = _char_width(ch)
        if used + w > columns - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def pad(text: str, columns: int, *, right: bool = False) -> str:
    """``text`` padded with spaces to ``columns`` (on the left with ``right``); longer text is left as is."""
    gap = " " * max(columns - width(text), 0)
    return gap + text if right else text + gap


def cell(text: str, columns: int) -> str:
    """``text`` cut and padded to exactly ``columns``: one column of a table."""
    return pad(fit(text, columns), columns)
