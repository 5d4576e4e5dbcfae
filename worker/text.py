"""Text preprocessing shared by the trainer and the worker, so train-time and serve-time text are equal.

The four variants the reference research compared are the *modes*:

``raw``
    the text as written (only whitespace normalisation and lowercasing, when enabled);
``remove_emoji``
    emoji deleted;
``demojize``
    each emoji replaced by its Chinese description (``🔥`` → ``火焰``), via the ``emoji`` package;
``remove_punct``
    punctuation and symbols deleted (emoji included, as they are symbols).

Lowercasing and whitespace normalisation are switches applied after the mode.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal, get_args

import emoji

__all__ = ["MODES", "Mode", "Preprocessor"]

Mode = Literal["raw", "remove_emoji", "demojize", "remove_punct"]
MODES: tuple[str, ...] = get_args(Mode)

_WHITESPACE = re.compile(r"\s+")


def _remove_punct(text: str) -> str:
    # Unicode categories P* (punctuation) and S* (symbols: emoji, currency, math) are dropped.
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PS")


def _demojize(text: str) -> str:
    # ':火焰:' → ' 火焰 ', so that descriptions do not glue to the neighbouring words.
    return emoji.demojize(text, language="zh", delimiters=(" ", " "))


@dataclass(frozen=True, slots=True)
class Preprocessor:
    """A pure function ``str -> str``; its fields are what a version's manifest records."""

    mode: Mode = "raw"
    lowercase: bool = True
    normalize_whitespace: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown preprocessing mode {self.mode!r}; expected one of {', '.join(MODES)}")

    def __call__(self, text: str) -> str:
        if self.mode == "remove_emoji":
            text = emoji.replace_emoji(text, replace="")
        elif self.mode == "demojize":
            text = _demojize(text)
        elif self.mode == "remove_punct":
            text = _remove_punct(text)
        if self.lowercase:
            text = text.lower()
        if self.normalize_whitespace:
            text = _WHITESPACE.sub(" ", text).strip()
        return text

    def batch(self, texts: list[str]) -> list[str]:
        return [self(t) for t in texts]
