"""The research's three layers, as ``livetopic train --layer`` builds their data from the chat exports:

- **general**: Cheer, Game, Broadcast, Chat (the reference card's labels) on every comment; Game is on when any of
  the five game topics is (:data:`~.data.DERIVED_LABELS`);
- **game**: Player, Team, Judge, Coach, Tactics (球員, 球隊, 裁判, 教練, 戰術) on the game comments only (Game on);
- **sentiment**: negative, neutral, positive, one class per comment (the top teacher score), from the games whose
  rows carry those scores; served as a single-label (top class) layer.

Held-out games are chosen by game as everywhere (:func:`~.data.split_games`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np

from worker.errors import InputFileError
from worker.inputs import LABELLED_SUFFIXES, expand_paths, read_rows

from .data import Dataset, load_dataset

__all__ = ["GAME_TOPICS", "LAYERS", "Layer", "load_layer", "single_label"]

Layer = Literal["general", "game", "sentiment"]
LAYERS: dict[str, list[str]] = {
    "general": ["Cheer", "Game", "Broadcast", "Chat"],
    "game": ["Player", "Team", "Judge", "Coach", "Tactics"],
    "sentiment": ["negative", "neutral", "positive"],
}
# a layer label → the teacher topic it is (the general layer's Game: any of the game layer's)
GAME_TOPICS = {"Player": "球員", "Team": "球隊", "Judge": "裁判", "Coach": "教練", "Tactics": "戰術"}


def single_label(layer: str | None) -> bool:
    """Whether the layer is served as one class per comment (the top score)."""
    return layer == "sentiment"


def _with_sentiment(paths: Iterable[Path | str]) -> list[Path]:
    """The files whose first row carries the three sentiment scores."""
    found = []
    for item in expand_paths(paths, LABELLED_SUFFIXES):
        rows = read_rows(item.path)
        if rows and all(name in rows[0] for name in LAYERS["sentiment"]):
            found.append(item.path)
    if not found:
        raise InputFileError("--layer sentiment: no file has negative/neutral/positive scores")
    return found


def load_layer(paths: Iterable[Path | str], layer: str) -> Dataset:
    """The labelled rows of ``layer`` from ``paths`` (the layer's labels, its comments)."""
    paths = list(paths)
    labels = LAYERS[layer]
    if layer == "sentiment":
        data = load_dataset(_with_sentiment(paths), labels)
        top = np.zeros_like(data.targets)
        top[np.arange(len(data)), data.targets.argmax(axis=1)] = 1.0
        data.targets = top
        return data
    data = load_dataset(paths, labels)
    if layer == "game":
        data = data.subset(np.flatnonzero(data.hard.any(axis=1)))  # Game on: any of the five
    return data
