"""Input files and lines: the one reader of comments for ``push`` (files, pipes, followed files), ``scrape``,
``bench``, ``train``, ``evaluate`` and ``label``.

Shapes, told from the content (never the file name):

- chat-downloader items (``.json`` list, ``.jsonl``, ``.csv`` with ``author.name``… columns): :mod:`.chatdownloader`
- pytchat items as JSON: :mod:`.pytchat`
- yt-dlp's ``<id>.live_chat.json`` (raw YouTube actions, one a line): :mod:`.ytdlp`
- livetopic's own: a JSON list (e.g. a chat log with ``time``, ``user``, ``content``), JSONL or CSV with a
  ``text`` (or ``content``) field, and plain text, one comment a line: :mod:`.shapes`

Mapping: ``text`` ← the message (emoji runs as the emoji, or ``:shortcut:`` for custom ones), ``user`` ← the
author's name, ``id`` ← the message id, ``ts`` ← the message time (ISO 8601, UTC), ``channel`` ← ``--channel``
or the video id in yt-dlp's file name. Items without viewer text (memberships, stickers, deleted or empty
messages, tickers…) are :class:`Skipped`, counted by kind. A line or row that cannot be read is
:class:`Unreadable`: ``push`` skips it with a WARNING naming its file and line, and reads on.
"""

from __future__ import annotations

from .files import LABELLED_SUFFIXES, SUFFIXES, InputFile, expand_paths, read_inputs, read_records, read_rows
from .lines import LineDecoder
from .records import Reading, Record, Skipped, Unreadable, parse_offset, summary_of_skipped, summary_of_unreadable
from .shapes import ACCEPTED, METADATA_COLUMNS, convert_row, label_columns, text_of, to_record

__all__ = [
    "ACCEPTED",
    "LABELLED_SUFFIXES",
    "METADATA_COLUMNS",
    "SUFFIXES",
    "InputFile",
    "LineDecoder",
    "Reading",
    "Record",
    "Skipped",
    "Unreadable",
    "convert_row",
    "expand_paths",
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
