"""A multi-task version's heads as its manifest names them (pure: no loading here, :mod:`.runtime` serves them).

A version may be one network whose outputs (the manifest's ``labels``, in order) split into **heads**: one shared
encoder, several classifiers, scored in one forward pass. The first head's labels and scores are the result's
``labels`` and ``scores``; each further head adds ``<name>_labels`` and ``<name>_scores`` to the same result for
the comments that meet its condition (``when: general.Game``: the head ``general`` gave ``Game``), exactly as
the equivalent pipeline's stages would (:mod:`.stages`). A head is multi-label (each label over its threshold)
or single-label (``multi_label: false``: the top class, its scores a softmax over the head's outputs)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, model_validator

from .stages import Conditional, check_order

__all__ = ["HeadSpec", "check_heads", "head_columns"]


class HeadSpec(Conditional):
    labels: list[str] = Field(min_length=1)  # the head's outputs, consecutive in the manifest's labels
    multi_label: bool = True  # False: one class per comment (the top score)

    @model_validator(mode="after")
    def _check(self) -> HeadSpec:
        if not self.multi_label and len(self.labels) < 2:
            raise ValueError(f"head {self.name!r}: a single-label head has at least two labels")
        return self


def check_heads(heads: Sequence[HeadSpec], labels: Sequence[str]) -> None:
    """The heads' labels, in order, are the network's outputs (``labels``); names unique; the first head
    unconditional; each condition names a label of an earlier head."""
    if not heads:
        return
    if len(heads) < 2:
        raise ValueError("a multi-task version has at least two heads (one head is a plain model)")
    joined = [label for head in heads for label in head.labels]
    if joined != list(labels):
        raise ValueError(f"the heads' labels {joined} are not the version's outputs {list(labels)}, in order")
    check_order(heads, "head")
    labels_of = {head.name: head.labels for head in heads}
    for head in heads:
        condition = head.condition()
        if condition is not None and condition.label not in labels_of[condition.stage]:
            raise ValueError(
                f"head {head.name!r}: {condition.stage} has no label {condition.label!r} "
                f"(its labels: {labels_of[condition.stage]})"
            )


def head_columns(heads: Sequence[HeadSpec]) -> list[slice]:
    """Each head's columns of the network's outputs: its labels, consecutive, in the heads' order."""
    out, start = [], 0
    for head in heads:
        out.append(slice(start, start + len(head.labels)))
        start += len(head.labels)
    return out
