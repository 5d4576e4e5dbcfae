"""One record per comment through the stages: an :class:`Item` is made by admit from a stream entry, gains its
token ids there (from the model that will score it), then its scores in the score stage, or a rejection
anywhere along the way; the publisher renders it. Every item ends scored or rejected, never both, never neither;
but a retraction (a moderator's deletion or ban, :class:`~worker.wire.Retract`), which admit sends straight to
the publisher: it needs no model and is published as it is.

The wire types (:mod:`worker.wire`) stay what Redis carries: an Item holds the parsed :class:`~worker.wire.Comment`
or the :class:`~worker.wire.Rejection`, and everything the worker adds to it lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..model.chunks import Prepared
from ..model.runtime import Head, Stage
from ..wire import Comment, Rejection, Retract

__all__ = ["Delivery", "Item", "Model"]


class Model(Protocol):
    """What the stages need of a model (:class:`~worker.model.runtime.LoadedModel` is one): admit encodes,
    the score stage prepares, runs and decides (then each further stage of a pipeline, on the comments that meet
    its condition), the publisher names the labels and the version. ``stage_name``: the ``stage`` label of its
    metrics. ``heads``: of a multi-task version, its heads (the first is ``labels``; the further ones are decided
    from the same run)."""

    tag: str
    labels: list[str]
    stage_name: str
    stages: tuple[Stage, ...]
    heads: tuple[Head, ...]

    def encode(self, texts: Sequence[str]) -> list[list[int]]: ...

    def prepare(self, ids: Sequence[Sequence[int]], max_tokens: int) -> Prepared: ...

    def run(self, prepared: Prepared) -> np.ndarray: ...

    def decide(self, probs: np.ndarray) -> list[list[str]]: ...


@dataclass(slots=True)
class Delivery:
    """Entries a reader took into the worker's hands, for admit: from which shard, and the delivery count of
    those delivered before (entry id → times; absent: the first delivery)."""

    shard: int
    entries: list[tuple[str, dict[bytes, bytes]]]
    deliveries: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Item:
    """One comment in the worker. ``shard``: the reader it came from (its result goes back through that shard's
    publish script). ``model``: the model whose tokenizer made ``ids`` and that scores them (set together, by
    admit: a model swap lands there, so each comment is encoded once, by the model that scores it)."""

    entry_id: str
    shard: int
    comment: Comment | None = None
    rejection: Rejection | None = None
    ids: list[int] = field(default_factory=list)
    model: Model | None = None
    labels: list[str] | None = None
    probs: np.ndarray | None = None  # this comment's row of the batch's probabilities
    retraction: Retract | None = None  # a retraction entry: never encoded, scored or batched
    # the further stages of a pipeline that ran on it: stage name → (labels, probabilities)
    stages: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)

    @classmethod
    def rejected(cls, rejection: Rejection, shard: int) -> Item:
        return cls(rejection.entry_id, shard, rejection=rejection)

    @classmethod
    def retracting(cls, retraction: Retract, shard: int) -> Item:
        return cls(retraction.entry_id, shard, retraction=retraction)

    def reject(self, error: str) -> None:
        """Set aside with ``error``: its dead letter keeps the passthrough fields and the text."""
        comment = self.comment
        assert comment is not None, "only a parsed comment is rejected later"
        fields = dict(comment.passthrough, text=comment.text)
        self.rejection = Rejection(self.entry_id, error, fields, comment.deliveries)

    def scored(self, labels: list[str], probs: np.ndarray) -> None:
        self.labels, self.probs = labels, probs

    def staged(self, stage: str, labels: list[str], probs: np.ndarray) -> None:
        """A further stage of the pipeline scored it."""
        self.stages[stage] = (labels, probs)

    def labels_by_stage(self, first: str) -> dict[str, list[str]]:
        """Stage name → the labels each stage that ran on it gave (``first``: the first stage's name)."""
        return {first: self.labels or [], **{name: labels for name, (labels, _) in self.stages.items()}}
