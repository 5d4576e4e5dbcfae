"""A pipeline version run over a list of texts in one thread (bench, evaluate): the first stage on every text,
each further stage on the texts that meet its condition, as the worker's score stage runs them batch by batch
(:class:`~.runtime.Stage` decides who meets a condition, here and there)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .runtime import LoadedModel

__all__ = ["StageOutput", "run_cascade"]


@dataclass(frozen=True)
class StageOutput:
    """One stage's work: which texts it ran on (indices into the texts), their probabilities and labels, and the
    seconds it took (tokenizer and model together, as a worker's one thread would spend them)."""

    name: str
    rows: np.ndarray  # int indices of the texts it ran on
    probs: np.ndarray  # [len(rows), labels]
    labels: list[list[str]]
    label_names: list[str]
    seconds: float


def run_cascade(
    model: LoadedModel, texts: Sequence[str], *, batch_size: int = 64, max_tokens: int = 8192, first_only: bool = False
) -> list[StageOutput]:
    """Every stage of ``model`` over ``texts`` in order (a single-model version: one stage; a multi-task version:
    each head, from one run); ``first_only``: the first stage alone (what the cascade costs is measured against
    it)."""
    started = time.perf_counter()
    probs = model.predict_texts(texts, batch_size, max_tokens)
    every = np.arange(len(texts))
    first = probs[:, : len(model.labels)]  # a multi-task version's first head
    outputs = [
        StageOutput(
            model.stage_name, every, first, model.decide(first), list(model.labels), time.perf_counter() - started
        )
    ]
    if first_only:
        return outputs
    given: list[dict[str, list[str]]] = [{model.stage_name: labels} for labels in outputs[0].labels]
    for head in model.heads[1:]:  # from the same run: no time of their own
        rows = np.array([i for i, labels in enumerate(given) if head.applies(labels)], dtype=np.int64)
        head_probs = head.probs(probs[rows])
        decided = head.decide(head_probs)
        for i, labels in zip(rows, decided, strict=True):
            given[i][head.name] = labels
        outputs.append(StageOutput(head.name, rows, head_probs, decided, list(head.labels), 0.0))
    for stage in model.stages:
        rows = np.array([i for i, labels in enumerate(given) if stage.applies(labels)], dtype=np.int64)
        started = time.perf_counter()
        stage_probs = stage.model.predict_texts([texts[i] for i in rows], batch_size, max_tokens)
        decided = stage.model.decide(stage_probs) if len(rows) else []
        for i, labels in zip(rows, decided, strict=True):
            given[i][stage.name] = labels
        outputs.append(
            StageOutput(stage.name, rows, stage_probs, decided, list(stage.model.labels), time.perf_counter() - started)
        )
    return outputs
