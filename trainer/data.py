"""Labelled comments: label extraction, the game-wise split and a data fingerprint. Files are read by
:mod:`worker.inputs` (the same reader as ``push``): ``.json`` lists, ``.jsonl``, ``.csv``, and ``.txt`` (one
comment a line, no labels: for ``livetopic label`` only).

Labels are the requested names, or every other column that is not known metadata. A label value is a number
in [0, 1] (0/1, a boolean, or a soft score); the label is *on* when the value is > 0.5, and the value itself
may serve as a soft training target. The group (game) of a row is its ``game`` field, else its file name
without suffix: held-out data is chosen by group, never by row, because chat within one game repeats itself.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worker.errors import InputFileError
from worker.inputs import LABELLED_SUFFIXES, METADATA_COLUMNS, expand_paths, label_columns, read_rows, text_of

__all__ = [
    "CHAT_TOPICS",
    "DEFAULT_TEST_FRACTION",
    "DEFAULT_VAL_FRACTION",
    "DERIVED_LABELS",
    "METADATA_COLUMNS",
    "Dataset",
    "Split",
    "load_dataset",
    "load_texts",
    "split_games",
]

log = logging.getLogger(__name__)
# The held-out games, as fractions of all games: one default for train, evaluate and the baseline.
DEFAULT_VAL_FRACTION = 0.1
DEFAULT_TEST_FRACTION = 0.2
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
    "Tactics": ("戰術",),
    "Team": ("球隊",),
}


# --- rows ---------------------------------------------------------------------------------------------
def _text_of(path: Path, number: int, record: dict[str, Any]) -> str:
    text = text_of(record)
    if text is None:
        raise InputFileError(f"{path}: row {number} has no text (expected a text or content field)")
    return text


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


def _row_targets(
    path: Path, number: int, record: dict[str, Any], labels: Sequence[str], optional: frozenset[str]
) -> list[float]:
    row = []
    for label in labels:
        if label in record:
            row.append(_value(path, number, label, record[label]))
        elif label in DERIVED_LABELS and all(m in record for m in DERIVED_LABELS[label]):
            row.append(max(_value(path, number, m, record[m]) for m in DERIVED_LABELS[label]))
        elif label in optional:
            row.append(float("nan"))
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
    # where a target counts (boolean [rows, labels]; None: everywhere): a multi-task model's heads each learn
    # from their own rows only (:mod:`.multitask`)
    mask: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def hard(self) -> np.ndarray:
        """Boolean [rows, labels]: the label is on (value > 0.5)."""
        return self.targets > 0.5

    @property
    def is_soft(self) -> bool:
        return bool(((self.targets > 0.0) & (self.targets < 1.0)).any())

    def subset(self, rows: Sequence[int] | np.ndarray) -> Dataset:
        idx = [int(i) for i in rows]
        return Dataset(
            [self.texts[i] for i in idx],
            list(self.labels),
            self.targets[idx],
            [self.groups[i] for i in idx],
            self.fingerprint,
            list(self.files),
            None if self.mask is None else self.mask[idx],
        )

    def in_groups(self, names: Iterable[str]) -> Dataset:
        wanted = set(names)
        return self.subset([i for i, g in enumerate(self.groups) if g in wanted])


def _fingerprint(entries: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, file_hash in sorted(entries):
        digest.update(f"{name}\0{file_hash}\n".encode())
    return digest.hexdigest()


def load_dataset(
    paths: Iterable[Path | str], labels: Sequence[str] | None = None, optional: Iterable[str] = ()
) -> Dataset:
    """Read labelled rows from ``paths``. ``labels``: the label columns (default: every non-metadata
    numeric column of the first row); those in ``optional`` are NaN in the rows that lack them. The fingerprint
    is a sha256 over the file names and contents."""
    maybe = frozenset(optional)
    files = expand_paths(paths, LABELLED_SUFFIXES)
    texts: list[str] = []
    groups: list[str] = []
    rows: list[list[float]] = []
    entries: list[tuple[str, str]] = []
    chosen: list[str] | None = list(labels) if labels else None
    for item in files:
        path, group = item.path, item.group
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputFileError(f"{path}: cannot read: {exc}") from exc
        entries.append((group, hashlib.sha256(data).hexdigest()))
        records = read_rows(path, data)
        for number, record in enumerate(records, 1):
            if chosen is None:
                chosen = label_columns(record)
                if not chosen:
                    raise InputFileError(f"{path}: no label columns (numeric 0/1 or score fields) found")
            texts.append(_text_of(path, number, record))
            rows.append(_row_targets(path, number, record, chosen, maybe))
            game = record.get("game")
            groups.append(str(game) if game not in (None, "") else group)
    if not texts or chosen is None:
        raise InputFileError(f"no rows in {', '.join(str(f.path) for f in files)}")
    if len(set(chosen)) != len(chosen):
        raise InputFileError(f"duplicate label names in {chosen}")
    targets = np.asarray(rows, dtype=np.float32).reshape(len(texts), len(chosen))
    return Dataset(texts, chosen, targets, groups, _fingerprint(entries), [str(f.path) for f in files])


def load_texts(paths: Iterable[Path | str]) -> tuple[list[str], list[str]]:
    """(texts, groups) of unlabelled or labelled files, for the keyword labeller."""
    texts: list[str] = []
    groups: list[str] = []
    for item in expand_paths(paths):
        for number, record in enumerate(read_rows(item.path), 1):
            texts.append(_text_of(item.path, number, record))
            game = record.get("game")
            groups.append(str(game) if game not in (None, "") else item.group)
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


def split_games(
    groups: Iterable[str],
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    val_games: Sequence[str] | None = None,
    test_games: Sequence[str] | None = None,
) -> Split:
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
