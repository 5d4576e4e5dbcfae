"""The keyword labeller of the original research, as a labelling tool and a baseline.

A lexicon directory holds ``keywords.json`` (lists ``cheer_words``, ``tactic_words``, ``coach_words``,
``stream_words``, ``judge_words``, ``team_emoji``, ``cheer_emoji``), ``teams.txt``,
``player_nicknames.txt`` and ``players/<team>.txt`` (one entry a line). The rule, per comment:

- **Cheer**: a cheer word or cheer emoji;
- **Broadcast**: a stream word;
- **Game**: a tactic, coach or judge word, a team emoji, a team name or a player name (or nickname);
- **Chat**: none of the above.

Matching is case-insensitive substring search; emoji variation selectors (U+FE0F) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.errors import InputFileError
from worker.inputs import json_object

__all__ = ["LABELS", "KeywordLabeller", "Lexicon"]

LABELS: tuple[str, ...] = ("Cheer", "Game", "Broadcast", "Chat")
KEYWORD_KEYS = (
    "cheer_words",
    "tactic_words",
    "coach_words",
    "stream_words",
    "judge_words",
    "team_emoji",
    "cheer_emoji",
)


def _normalise(text: str) -> str:
    return text.replace("\ufe0f", "").lower()


def _read_lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read: {exc}") from exc


@dataclass(frozen=True)
class Lexicon:
    cheer: tuple[str, ...]
    broadcast: tuple[str, ...]
    game: tuple[str, ...]

    @classmethod
    def load(cls, directory: Path | str) -> Lexicon:
        root = Path(directory)
        keywords_path = root / "keywords.json"
        keywords = json_object(keywords_path, name=f"{keywords_path} (the lexicon)", encoding="utf-8-sig")
        lists: dict[str, list[str]] = {}
        for key in KEYWORD_KEYS:
            value = keywords.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputFileError(f"{keywords_path}: {key!r} must be a list of strings")
            lists[key] = value
        names: list[str] = []
        for name in ("teams.txt", "player_nicknames.txt"):
            if (root / name).is_file():
                names += _read_lines(root / name)
        if (root / "players").is_dir():
            for path in sorted((root / "players").glob("*.txt")):
                names += _read_lines(path)
        game = lists["tactic_words"] + lists["coach_words"] + lists["judge_words"] + lists["team_emoji"] + names
        return cls(
            cheer=_clean(lists["cheer_words"] + lists["cheer_emoji"]),
            broadcast=_clean(lists["stream_words"]),
            game=_clean(game),
        )


def _clean(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({_normalise(w.strip()) for w in words if w.strip()}, key=lambda w: (-len(w), w)))


def _pattern(words: Sequence[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(re.escape(w) for w in words)) if words else None


class KeywordLabeller:
    """``labels(texts)`` → boolean [rows, 4] in the order of :data:`LABELS`."""

    labels = LABELS

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self._cheer = _pattern(lexicon.cheer)
        self._broadcast = _pattern(lexicon.broadcast)
        self._game = _pattern(lexicon.game)

    @classmethod
    def from_dir(cls, directory: Path | str) -> KeywordLabeller:
        return cls(Lexicon.load(directory))

    def label(self, text: str) -> dict[str, int]:
        row = self.labels_of([text])[0]
        return {name: int(v) for name, v in zip(LABELS, row, strict=True)}

    def labels_of(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(LABELS)), dtype=bool)
        for i, text in enumerate(texts):
            norm = _normalise(text)
            cheer = bool(self._cheer and self._cheer.search(norm))
            game = bool(self._game and self._game.search(norm))
            broadcast = bool(self._broadcast and self._broadcast.search(norm))
            out[i] = (cheer, game, broadcast, not (cheer or game or broadcast))
        return out
