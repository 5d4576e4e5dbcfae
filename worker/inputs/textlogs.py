"""Plain text that is not one comment a line: other tools' text outputs, refused (with a one-line error naming
what the file is and what to do) rather than pushed line by line as garbage. ``--format text`` overrides.

- chat-downloader's text output (``-o chat.txt``: ``0:05 | (Moderator) *NT$75.00* Name: message``). It cannot be
  read back faithfully: a deleted message and a user notice print like messages, a message's later lines like
  a room-state line, a subscription's own message is glued to its system text, and there are no message ids
  (so no de-duplication) and no time zone. Its ``.json``, ``.jsonl`` and ``.csv`` outputs hold everything.
- pytchat's ``TSVArchiver`` output (``datetime elapsed authorName message…``): a membership announcement
  cannot be told from a message there, and rows have no message ids. Its ``JsonfileArchiver`` holds the raw
  actions.
- Logs of other tools: most lines start with a date and time, a bracketed time, or an IRC-style ``<nick>``,
  or every line has the same tab-separated columns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["SAMPLE_LINES", "foreign_text"]

SAMPLE_LINES = 50  # how many of the first non-blank lines are looked at
TSV_HEADER = ("datetime", "elapsed", "authorName", "message")  # pytchat's TSVArchiver, its first columns
_CHAT_DOWNLOADER = re.compile(
    r"^(?:-?\d{1,3}(?::\d\d){1,2}|\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?|\d\d:\d\d(?: [AP]M)?) \| \S"
)
_LOG = re.compile(
    r"""^\s*(?:
        \[\d[^\]\n]{0,38}\]\s                                # [12:00:01] …, [2024-05-01 12:00] …
      | \d{4}-\d\d-\d\d[ T]\d\d:\d\d                          # 2024-05-01 12:00 …
      | \d{1,2}:\d\d(?::\d\d)?\s+<[^>\s]{1,40}>               # 12:00 <nick> …
      | <[^>\s]{1,40}>\s                                     # <nick> …
    )""",
    re.X,
)
FIX = "give --format text to push each line as one comment"


def _share(lines: Sequence[str], pattern: re.Pattern[str]) -> float:
    return sum(1 for line in lines if pattern.match(line)) / len(lines)


def _tab_columns(lines: Sequence[str]) -> bool:
    counts = {line.count("\t") for line in lines}
    return len(counts) == 1 and counts != {0}


def foreign_text(lines: Sequence[str]) -> str | None:
    """What ``lines`` (a file's first non-blank lines; a pipe's first line) are when they are another tool's
    text output rather than one comment a line, with what to do instead; None for plain text."""
    sample = [line.rstrip("\r\n") for line in lines if line.strip()][:SAMPLE_LINES]
    if not sample:
        return None
    if tuple(sample[0].lstrip("\ufeff").split("\t")[: len(TSV_HEADER)]) == TSV_HEADER:
        return (
            "pytchat's TSVArchiver output: a membership announcement cannot be told from a message there and "
            f"rows have no ids; archive the chat with JsonfileArchiver (read as is) or push chatdata.json(), or {FIX}"
        )
    if _share(sample, _CHAT_DOWNLOADER) >= 0.5:
        return (
            "chat-downloader's text output ('TIME | NAME: message'): it cannot be read back faithfully (deleted "
            "messages and notices print like messages, no message ids); write the chat with -o chat.jsonl "
            f"(or .json, .csv), or {FIX}"
        )
    if _share(sample, _LOG) >= 0.8 or (len(sample) > 1 and _tab_columns(sample)):
        return (
            f"looks like another tool's log, not one comment a line (e.g. {sample[0][:60]!r}); {FIX}, or export "
            "the chat in a shape livetopic reads"
        )
    return None
