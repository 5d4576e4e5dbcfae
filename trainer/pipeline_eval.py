"""``livetopic evaluate`` on a pipeline version (or a multi-task version: each head as a stage): each stage's F1
on its own comments, and the chat exports' 8 topics recovered from the cascade (轉播, 加油, 閒聊 from the general
layer; the five game topics from the game layer where it ran) against the teacher's, beside a flat 8-topic model on
the same games.

A stage is recognised by its labels (:data:`~.layers.LAYERS`). The games scored are those no stage (and not the
flat model) trained or validated on, as their manifests record them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from worker.errors import ConfigError

from .data import CHAT_TOPICS, Dataset, load_dataset
from .layers import GAME_TOPICS, LAYERS, load_layer
from .metrics import compute_metrics

if TYPE_CHECKING:
    from worker.model.runtime import LoadedModel

__all__ = ["evaluate_pipeline"]

_GENERAL_TOPICS = {"Broadcast": "轉播", "Cheer": "加油", "Chat": "閒聊"}


def _layer_of(labels: Sequence[str]) -> str | None:
    return next((name for name, wanted in LAYERS.items() if set(wanted) <= set(labels)), None)


@dataclass(frozen=True)
class _Part:
    """A stage of a pipeline, or a head of a multi-task version: its labels, its scores for texts (a head's: its
    columns of the one run) and how it decides them, as served."""

    name: str
    labels: list[str]
    model: LoadedModel  # the stage's own model, or the multi-task version
    predict: Callable[[list[str]], np.ndarray]
    decide: Callable[[np.ndarray], list[list[str]]]


def _parts(model: LoadedModel) -> list[_Part]:
    if model.heads:
        return [
            _Part(h.name, h.labels, model, lambda texts, h=h: h.probs(model.predict_texts(texts)), h.decide)  # type: ignore[misc]
            for h in model.heads
        ]
    stages = [(model.stage_name, model), *((s.name, s.model) for s in model.stages)]
    return [_Part(name, m.labels, m, m.predict_texts, m.decide) for name, m in stages]


def _seen_games(models: Sequence[LoadedModel]) -> set[str]:
    seen: set[str] = set()
    for model in models:
        args = model.manifest.training_args
        seen |= set(args.get("train_games") or []) | set(args.get("val_games") or [])
    return seen


def _stage_f1(part: _Part, rows: Dataset) -> dict[str, Any]:
    """A stage (head) on its own comments, decided as it is served (thresholds, or the top class)."""
    probs = part.predict(rows.texts)
    columns = [part.labels.index(label) for label in rows.labels]
    decided = np.zeros_like(probs, dtype=bool)
    for i, on in enumerate(part.decide(probs)):
        decided[i, [part.labels.index(label) for label in on]] = True
    metrics = compute_metrics(rows.hard, decided[:, columns], rows.labels, probs[:, columns])
    return {k: metrics[k] for k in ("n", "micro_f1", "macro_f1", "exact_match", "per_label")}


def _topics_of_cascade(model: LoadedModel, texts: list[str], layers: dict[str, str]) -> np.ndarray:
    """[rows, 8] booleans: the teacher topics (:data:`CHAT_TOPICS` order) as the cascade gives them."""
    from worker.model.cascade import run_cascade

    out = np.zeros((len(texts), len(CHAT_TOPICS)), dtype=bool)
    for stage in run_cascade(model, texts):
        mapping = {"general": _GENERAL_TOPICS, "game": GAME_TOPICS}.get(layers.get(stage.name, ""), {})
        for row, on in zip(stage.rows.tolist(), stage.labels, strict=True):
            for label in on:
                if label in mapping:
                    out[row, CHAT_TOPICS.index(mapping[label])] = True
    return out


def _micro(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    metrics = compute_metrics(truth, predicted, list(CHAT_TOPICS))
    return {
        "micro_f1": metrics["micro_f1"],
        "macro_f1": metrics["macro_f1"],
        "per_topic_f1": {k: v["f1"] for k, v in metrics["per_label"].items()},
    }


def evaluate_pipeline(
    model: LoadedModel, data_paths: Sequence[Path | str], *, flat: LoadedModel | None = None
) -> dict[str, Any]:
    """Per-stage F1 and the 8 topics of ``model`` (a loaded pipeline version, or a multi-task version: per head)
    on the held-out games."""
    parts = _parts(model)
    layers = {p.name: layer for p in parts if (layer := _layer_of(p.labels)) is not None}
    topics = load_dataset(data_paths, list(CHAT_TOPICS))
    seen = _seen_games([p.model for p in parts] + ([flat] if flat is not None else []))
    held = sorted(set(topics.groups) - seen)
    if not held:
        raise ConfigError("no game of the data is held out from every stage (each trained or validated on all)")
    rows = topics.in_groups(held)
    source = "multitask" if model.heads else "pipeline"
    out: dict[str, Any] = {"source": source, "model": model.tag, "games": len(held), "n": len(rows), "stages": {}}
    for part in parts:
        layer = layers.get(part.name)
        if layer is None:
            continue
        own = load_layer(data_paths, layer).in_groups(held)  # the stage's own comments (game: Game on)
        out["stages"][part.name] = {"layer": layer, **_stage_f1(part, own)}
    if {"general", "game"} <= set(layers.values()):
        out["topics_cascade"] = _micro(rows.hard, _topics_of_cascade(model, rows.texts, layers))
    if flat is not None:
        columns = [flat.labels.index(t) for t in CHAT_TOPICS]
        probs = flat.predict_texts(rows.texts)[:, columns]
        out["topics_flat"] = {"model": flat.tag, **_micro(rows.hard, probs >= flat.thresholds[columns][None, :])}
    return out
