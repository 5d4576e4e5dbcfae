"""A loaded version at work: text to token ids, ids to padded chunks, chunks to probabilities (through its
backend), probabilities to labels.

Thread model: :meth:`LoadedModel.encode` and :meth:`LoadedModel.prepare` run on the tokenizer thread,
:meth:`LoadedModel.run` on the model thread; both are plain blocking functions that the service calls
through dedicated executors, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .backends.base import Backend
from .chunks import Prepared, pad_chunks
from .heads import head_columns
from .labels import decide, label_names
from .ngrams import NgramMember
from .repository import Manifest
from .stages import Condition
from .tokenizer import encode_texts, serving_backend

__all__ = ["Head", "LoadedModel", "Stage", "meets"]

_SMOKE_TEXTS = ("加油！", "好球 nice block", "轉播卡住了", "😂😂😂")


def meets(when: Condition | None, labels: Mapping[str, Sequence[str]]) -> bool:
    """Whether a comment with ``labels`` (stage or head name → the labels it gave, for those that ran on it)
    meets the condition ``when`` (None: every comment does)."""
    return when is None or when.label in labels.get(when.stage, ())


def _softmax_of_sigmoid(probs: np.ndarray) -> np.ndarray:
    """The softmax over a single-label head's logits, from their sigmoids (what every backend returns)."""
    p = np.clip(probs.astype(np.float64), 1e-12, 1 - 1e-12)
    logits = np.log(p) - np.log1p(-p)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)


@dataclass(frozen=True)
class Head:
    """A head of a multi-task version: its name (the result's ``<name>_labels``, ``<name>_scores``; the first
    head's are the result's ``labels``, ``scores``), its labels, which of the network's outputs are its, how its
    labels are decided, and the condition a comment meets for the head to be given (None: every comment)."""

    name: str
    labels: list[str]
    columns: slice
    multi_label: bool
    thresholds: np.ndarray
    when: Condition | None = None

    def probs(self, outputs: np.ndarray) -> np.ndarray:
        """This head's columns of the network's outputs (as :meth:`LoadedModel.run` returns them)."""
        return outputs[:, self.columns]

    def decide(self, probs: np.ndarray) -> list[list[str]]:
        """Label names per row of this head's probabilities."""
        return label_names(decide(probs, self.thresholds, self.multi_label), self.labels)

    def applies(self, labels: Mapping[str, Sequence[str]]) -> bool:
        return meets(self.when, labels)


def _heads(manifest: Manifest, thresholds: np.ndarray) -> tuple[Head, ...]:
    return tuple(
        Head(spec.name, list(spec.labels), columns, spec.multi_label, thresholds[columns], spec.condition())
        for spec, columns in zip(manifest.heads, head_columns(manifest.heads), strict=True)
    )


class LoadedModel:
    """A version ready to serve: manifest (labels, thresholds, preprocessing), tokenizer and backend.
    Built by :func:`worker.model.load.load_model`. Of a pipeline version, the first stage's model, named as the
    version (``tag``, ``version``), holding the further ``stages`` (:meth:`lead`); ``stage_name``: the
    ``stage`` label of its metrics (``model`` for a single-model version). Of a multi-task version, the one
    network (``outputs``: all its labels) with its ``heads``: ``labels`` and :meth:`decide` are the first head's,
    :meth:`run` gives every output (each single-label head's as its softmax) from one forward pass."""

    def __init__(
        self,
        model_dir: Path,
        manifest: Manifest,
        version: int,
        tokenizer: Any,
        backend: Backend,
        member: NgramMember | None = None,
    ) -> None:
        self.path, self.manifest, self.version = model_dir, manifest, version
        self.name = manifest.name
        self.tag = f"{manifest.name}:{version}"
        self.outputs = list(manifest.labels)
        self.multi_label = manifest.problem_type == "multi_label_classification"
        self.thresholds = np.array([manifest.threshold(label) for label in self.outputs], dtype=np.float32)
        self.heads = _heads(manifest, self.thresholds)
        self.labels = self.heads[0].labels if self.heads else self.outputs
        self.max_length = manifest.max_length
        self.preprocess = manifest.preprocessing.build()
        self.backend, self.member = backend, member
        self.device, self.dtype_name, self.backend_name = backend.device, backend.dtype_name, backend.name
        self._tokenizer = serving_backend(tokenizer, self.max_length)
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self.stage_name = self.heads[0].name if self.heads else "model"
        self.stages: tuple[Stage, ...] = ()

    def lead(self, name: str, version: int, stage_name: str, stages: Sequence[Stage]) -> None:
        """Make this model the first stage of the pipeline version ``name:version``, followed by ``stages``."""
        self.name, self.version, self.tag = name, version, f"{name}:{version}"
        self.stage_name, self.stages = stage_name, tuple(stages)

    # --- tokenizer thread -------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Preprocess and tokenise (truncated to ``max_length``, special tokens added)."""
        return encode_texts(self._tokenizer, self.preprocess, texts)

    def prepare(self, ids: Sequence[Sequence[int]], max_tokens: int) -> Prepared:
        """Length-sorted, padded chunks of ``ids``, staged for the backend; with an n-gram member, its
        probabilities too (they need no model thread)."""
        backend = self.backend
        prepared = pad_chunks(
            ids,
            max_tokens,
            self.pad_id,
            backend.chunk_overhead_tokens,
            backend.stage,
            backend.pack_tokens,
            backend.width_step,
            backend.pass_tokens,
        )
        if self.member is not None:
            prepared.member = self.member.probabilities(ids)
        return prepared

    # --- model thread -----------------------------------------------------------------------------
    def run(self, prepared: Prepared) -> np.ndarray:
        """Probabilities ``[size, outputs]`` (float32) in the original row order (of a multi-task version, every
        head's: the first head's are the first columns)."""
        out = np.empty((prepared.size, len(self.outputs)), dtype=np.float32)
        if prepared.chunks:
            out[prepared.row_order()] = self.backend.probabilities(prepared.chunks, self.multi_label)
        if self.member is not None and prepared.member is not None:
            out = self.member.blend(out, prepared.member)
        for head in self.heads:
            if not head.multi_label and prepared.size:
                out[:, head.columns] = _softmax_of_sigmoid(out[:, head.columns])
        return out

    # --- anywhere ---------------------------------------------------------------------------------
    def decide(self, probs: np.ndarray) -> list[list[str]]:
        """Label names per row: over threshold (multi-label, in model order) or the top one; of a multi-task
        version, the first head's (``probs``: its columns, or every output)."""
        if self.heads:
            return self.heads[0].decide(self.heads[0].probs(probs))
        return label_names(decide(probs, self.thresholds, self.multi_label), self.labels)

    def hits(self, probs: np.ndarray) -> np.ndarray:
        """Boolean ``[rows, outputs]``: every output's decision (each head on its own columns, conditions aside)."""
        if not self.heads:
            return decide(probs, self.thresholds, self.multi_label)
        return np.concatenate([decide(h.probs(probs), h.thresholds, h.multi_label) for h in self.heads], axis=1)

    def predict_texts(self, texts: Sequence[str], batch_size: int = 64, max_tokens: int = 8192) -> np.ndarray:
        """Probabilities ``[texts, outputs]`` for ``texts`` (evaluation, agreement checks, smoke tests)."""
        out = np.empty((len(texts), len(self.outputs)), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            part = texts[start : start + batch_size]
            out[start : start + len(part)] = self.run(self.prepare(self.encode(part), max_tokens))
        return out

    def smoke_test(self) -> None:
        """Raise :class:`ModelError` unless a small batch gives finite probabilities of the right shape."""
        texts = [*_SMOKE_TEXTS, "x" * (self.max_length * 3)]
        try:
            probs = self.predict_texts(texts)
        except Exception as exc:
            raise ModelError(f"{self.path}: smoke batch failed: {type(exc).__name__}: {exc}") from exc
        if probs.shape != (len(texts), len(self.outputs)) or not np.isfinite(probs).all():
            raise ModelError(f"{self.path}: smoke batch gave non-finite or misshapen scores")


@dataclass(frozen=True)
class Stage:
    """A further stage of a pipeline: its name (the result's ``<name>_labels``, ``<name>_scores``), its model,
    and the condition a comment meets for it to run (None: every comment)."""

    name: str
    model: LoadedModel
    when: Condition | None = None

    def applies(self, labels: Mapping[str, Sequence[str]]) -> bool:
        """Whether a comment with ``labels`` (stage name → the labels that stage gave it, for the stages that ran
        on it) meets this stage's condition."""
        return meets(self.when, labels)
