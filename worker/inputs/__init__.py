"""Input files and lines: the one reader of comments for ``push`` (files, pipes, followed files), ``scrape``,
``bench``, ``train``, ``evaluate`` and ``label``.

Shapes, told from the content (never the file name):

- chat-downloader items (``.json`` list, ``.jsonl``, ``.csv`` with ``author.name``… columns): :mod:`.chatdownloader`
- pytchat items as JSON: :mod:`.pytchat`
- raw YouTube actions (yt-dlp's ``<id>.live_chat.json``, pytchat's ``JsonfileArchiver``): :mod:`.ytdlp`
- livetopic's own: a JSON list (e.g. a chat log with ``time``, ``user``, ``content``), JSONL or CSV with a
  ``text`` (or ``content``) field (or ``kind=retract``), and plain text, one comment a line: :mod:`.shapes`
- other tools' text outputs (chat-downloader's ``.txt``, pytchat's TSV, logs) are refused: :mod:`.textlogs`

Mapping (docs/INPUTS.md has the table per scraper): ``text`` ← the message (emoji runs as the emoji, or
``:shortcut:`` for custom ones), ``user`` ← the author's name, ``author_id``, ``id`` ← the message id, ``ts`` ←
the message time (ISO 8601, UTC), ``message_type``, ``amount``/``currency``, ``badges``, ``bits``,
``channel_id`` (:mod:`.fields`), ``channel`` ← ``--channel``, the video id in yt-dlp's file name, or the channel
id. Deletions and bans are :class:`Retraction` entries. Items without viewer text (memberships, stickers,
empty messages, tickers…) are :class:`Skipped`, counted by kind. A line or row that cannot be read is
:class:`Unreadable`: ``push`` skips it with a WARNING naming its file and line, and reads on.
"""

from __future__ import annotations

from .files import (
    LABELLED_SUFFIXES,
    SUFFIXES,
    InputFile,
    expand_paths,
    json_object,
    read_inputs,
    read_records,
    read_rows,
)
from .lines import LineDecoder
from .records import (
    Entry,
    Reading,
    Record,
    Retraction,
    Skipped,
    Unreadable,
    parse_offset,
    summary_of_skipped,
    summary_of_unreadable,
)
from .shapes import ACCEPTED, FORMATS, METADATA_COLUMNS, convert_row, label_columns, text_of, to_record

__all__ = [
    "ACCEPTED",
    "FORMATS",
    "LABELLED_SUFFIXES",
    "METADATA_COLUMNS",
    "SUFFIXES",
    "Entry",
    "InputFile",
    "LineDecoder",
    "Reading",
    "Record",
    "Retraction",
    "Skipped",
    "Unreadable",
    "convert_row",
    "expand_paths",
    "json_object",
    "label_columns",
    "parse_offset",
    "read_inputs",
    "read_records",
    "read_rows",
    "summary_of_skipped",
    "summary_of_unreadable",
    "text_of",
    "to_record",
]
