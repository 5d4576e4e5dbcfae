"""Labelled comments from disk: readers, label extraction, the game-wise split and a data fingerprint.

Supported files (a PATH may also be a directory: every supported file under it, sorted):

``*.json``
    a JSON list of objects, e.g. the chat export of a game (``content`` + one score per topic);
``*.jsonl``
    one JSON object a line;
``*.csv``
    a header row, then one comment a row;
``*.txt``
    one comment a line, no labels (for ``livetopic label`` only).

The text is the ``text`` field, or ``content`` when there is no ``text``. Labels are the requested
names, or every other column that is not known metadata. A label value is a number in [0, 1] (0/1, a
boolean, or a soft score); the label is *on* when the value is > 0.5, and the value itself may serve as
a soft training target. The group (game) of a row is its ``game`` field, else its file name without
suffix: held-out data is chosen by group, never by row, because chat within one game repeats itself.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worker.errors import InputFileError

__all__ = [
    "CHAT_TOPICS",
    "DERIVED_LABELS",
    "METADATA_COLUMNS",
    "Dataset",
    "Split",
    "expand_paths",
    "load_dataset",
    "load_texts",
    "read_records",
    "split_games",
]

log = logging.getLogger(__name__)

SUFFIXES = (".json", ".jsonl", ".csv", ".txt")
TEXT_COLUMNS = ("text", "content")
# Columns that are never labels: identifiers, times, and the sentiment scores some chat exports carry.
METADATA_COLUMNS = frozenset({
    "text", "content", "time", "timestamp", "user", "author", "id", "game", "group", "channel", "video",
    "source", "ts", "negative", "neutral", "positive",
})
# The teacher topics of the chat exports: broadcast, cheer, chat, player, coach, referee, tactics, team.
CHAT_TOPICS = ("轉播", "加油", "閒聊", "球員", "教練", "裁判", "戰術", "球隊")
# Labels that can be derived from the topics when a file has no such column: the value is the largest
# member score, so the label is on when any member is. The general four are the reference card's labels.
DERIVED_LABELS: dict[str, tuple[str, ...]] = {
    "Cheer": ("加油",),
    "Game": ("球員", "教練", "裁判", "戰術", "球隊"),
    "Broadcast": ("轉播",),
    "Chat": ("閒聊",),
    "Player": ("球員",),
    "Coach": ("教練",),
    "Judge": ("裁判",),
    "Tactic": ("戰術",),
    "Team": ("球隊",),
}


# --- files --------------------------------------------------------------------------------------------
def expand_paths(paths: Iterable[Path | str], suffixes: Sequence[str] = SUFFIXES) -> list[tuple[Path, str]]:
    """(file, group name) for each input; a directory contributes its supported files, sorted."""
    out: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                raise InputFileError(f"{path}: directory has no {'/'.join(suffixes)} files")
            out.extend((f, f.relative_to(path).with_suffix("").as_posix()) for f in files)
        elif path.is_file():
            if path.suffix.lower() not in suffixes:
                raise InputFileError(f"{path}: unsupported file type {path.suffix!r}; "
                                     f"expected one of {', '.join(suffixes)}")
            out.append((path, path.stem))
        else:
            raise InputFileError(f"{path}: no such file or directory")
    if not out:
        raise InputFileError("no input files given")
    return out


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: not UTF-8 text ({exc})") from exc


def read_records(path: Path, data: bytes | None = None) -> list[dict[str, Any]]:
    """The rows of one file as dictionaries (raises :class:`InputFileError` when unreadable)."""
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputFileError(f"{path}: cannot read: {exc}") from exc
    text = _decode(path, data)
    suffix = path.suffix.lower()
    records: list[dict[str, Any]] = []
    if suffix == ".json":
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise InputFileError(f"{path}: invalid JSON: {exc}") from exc
        if not isinstance(loaded, list):
            raise InputFileError(f"{path}: expected a JSON list of objects, got {type(loaded).__name__}")
        records = loaded
    elif suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                raise InputFileError(f"{path}:{number}: invalid JSON: {exc}") from exc
    elif suffix == ".csv":
        try:
            records = [dict(row) for row in csv.DictReader(io.StringIO(text, newline=""))]
        except csv.Error as exc:
            raise InputFileError(f"{path}: invalid CSV: {exc}") from exc
    elif suffix == ".txt":
        records = [{"text": line} for line in text.splitlines() if line.strip()]
    else:
        raise InputFileError(f"{path}: unsupported file type {path.suffix!r}")
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise InputFileError(f"{path}: row {number} is not an object")
    return records


def _text_of(path: Path, number: int, record: dict[str, Any]) -> str:
    for key in TEXT_COLUMNS:
        value = record.get(key)
        if isinstance(value, str):
            return value
    raise InputFileError(f"{path}: row {number} has no text (expected a {' or '.join(TEXT_COLUMNS)} field)")


def _value(path: Path, number: int, label: str, raw: Any) -> float:
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered in ("true", "false"):
            return float(lowered == "true")
        try:
            raw = float(lowered)
        except ValueError:
            raise InputFileError(f"{path}: row {number}: label {label!r} is {raw!r}, not a number") from None
    if not isinstance(raw, int | float) or not 0.0 <= float(raw) <= 1.0:
        raise InputFileError(f"{path}: row {number}: label {label!r} must be a number in [0, 1], got {raw!r}")
    return float(raw)


def _label_columns(record: dict[str, Any]) -> list[str]:
    return [k for k, v in record.items() if k not in METADATA_COLUMNS and (
        isinstance(v, int | float) or (isinstance(v, str) and _is_number(v)))]


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return value.strip().lower() in ("true", "false")
    return True


def _row_targets(path: Path, number: int, record: dict[str, Any], labels: Sequence[str]) -> list[float]:
    row = []
    for label in labels:
        if label in record:
            row.append(_value(path, number, label, record[label]))
        elif label in DERIVED_LABELS and all(m in record for m in DERIVED_LABELS[label]):
            row.append(max(_value(path, number, m, record[m]) for m in DERIVED_LABELS[label]))
        else:
            raise InputFileError(f"{path}: row {number} has no label column {label!r}")
    return row


# --- datasets -----------------------------------------------------------------------------------------
@dataclass
class Dataset:
    """Texts with a target in [0, 1] per label, and the group (game) of each row."""

    texts: list[str]
    labels: list[str]
    targets: np.ndarray  # float32 [rows, labels]
    groups: list[str]
    fingerprint: str = ""
    files: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def hard(self) -> np.ndarray:
        """Boolean [rows, labels]: the label is on (value > 0.5)."""
        return self.targets > 0.5

    @property
    def is_soft(self) -> bool:
        return bool(((self.targets > 0.0) & (self.targets < 1.0)).any())

    def group_names(self) -> list[str]:
        return sorted(set(self.groups))

    def subset(self, rows: Sequence[int] | np.ndarray) -> Dataset:
        idx = [int(i) for i in rows]
        return Dataset([self.texts[i] for i in idx], list(self.labels), self.targets[idx],
                       [self.groups[i] for i in idx], self.fingerprint, list(self.files))

    def in_groups(self, names: Iterable[str]) -> Dataset:
        wanted = set(names)
        return self.subset([i for i, g in enumerate(self.groups) if g in wanted])


def _fingerprint(entries: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, file_hash in sorted(entries):
        digest.update(f"{name}\0{file_hash}\n".encode())
    return digest.hexdigest()


def load_dataset(paths: Iterable[Path | str], labels: Sequence[str] | None = None) -> Dataset:
    """Read labelled rows from ``paths``. ``labels``: the label columns (default: every non-metadata
    numeric column of the first row). The fingerprint is a sha256 over the file names and contents."""
    files = expand_paths(paths, (".json", ".jsonl", ".csv"))
    texts: list[str] = []
    groups: list[str] = []
    rows: list[list[float]] = []
    entries: list[tuple[str, str]] = []
    chosen: list[str] | None = list(labels) if labels else None
    for path, group in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputFileError(f"{path}: cannot read: {exc}") from exc
        entries.append((group, hashlib.sha256(data).hexdigest()))
        records = read_records(path, data)
        for number, record in enumerate(records, 1):
            if chosen is None:
                chosen = _label_columns(record)
                if not chosen:
                    raise InputFileError(f"{path}: no label columns (numeric 0/1 or score fields) found")
            texts.append(_text_of(path, number, record))
            rows.append(_row_targets(path, number, record, chosen))
            game = record.get("game")
            groups.append(str(game) if game not in (None, "") else group)
    if not texts or chosen is None:
        raise InputFileError(f"no rows in {', '.join(str(p) for p, _ in files)}")
    if len(set(chosen)) != len(chosen):
        raise InputFileError(f"duplicate label names in {chosen}")
    targets = np.asarray(rows, dtype=np.float32).reshape(len(texts), len(chosen))
    return Dataset(texts, chosen, targets, groups, _fingerprint(entries), [str(p) for p, _ in files])


def load_texts(paths: Iterable[Path | str]) -> tuple[list[str], list[str]]:
    """(texts, groups) of unlabelled or labelled files, for the keyword labeller."""
    texts: list[str] = []
    groups: list[str] = []
    for path, group in expand_paths(paths):
        for number, record in enumerate(read_records(path), 1):
            texts.append(_text_of(path, number, record))
            game = record.get("game")
            groups.append(str(game) if game not in (None, "") else group)
    return texts, groups


# --- the split ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    train: list[str]
    val: list[str]
    test: list[str]

    def to_dict(self) -> dict[str, list[str]]:
        return {"train_games": self.train, "val_games": self.val, "test_games": self.test}


def _rank_key(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def _count(fraction: float, n: int) -> int:
    return int(fraction * n + 0.5) if fraction > 0 else 0


def split_games(groups: Iterable[str], *, val_fraction: float = 0.1, test_fraction: float = 0.0,
                val_games: Sequence[str] | None = None, test_games: Sequence[str] | None = None) -> Split:
    """Assign whole groups (games) to train/validation/test, deterministically.

    Groups are ranked by the sha256 of their name; the first ``test_fraction`` of them are the test
    games, the next ``val_fraction`` the validation games, the rest train. The choice depends only on
    the set of names, so ``train``, ``evaluate`` and the baseline agree on the held-out games. Explicit
    ``val_games``/``test_games`` override the fractions. With one group nothing can be held out by group
    (the caller decides what to do); with two, the one group is for validation only if asked for.
    """
    names = sorted(set(groups))
    for given in (val_games or [], test_games or []):
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise InputFileError(f"held-out games not in the data: {', '.join(unknown)}")
    ranked = sorted(names, key=_rank_key)
    if test_games is not None:
        test = sorted(test_games)
    else:
        n_test = min(_count(test_fraction, len(names)), max(len(names) - 2, 0))
        test = sorted(ranked[:n_test])
    rest = [g for g in ranked if g not in set(test)]
    if val_games is not None:
        val = sorted(set(val_games) - set(test))
    else:
        n_val = _count(val_fraction, len(names))
        if val_fraction > 0 and len(rest) >= 2:
            n_val = max(n_val, 1)
        val = sorted(rest[: min(n_val, max(len(rest) - 1, 0))])
    train = sorted(g for g in rest if g not in set(val))
    return Split(train, val, test)
