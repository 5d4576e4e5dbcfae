"""A pipeline version's stages as its manifest names them (pure: no loading here, :mod:`.load` loads them).

A version of a model repository may be a **pipeline**: the first stage scores every comment (its labels and
scores stay the result's ``labels`` and ``scores``), each further stage scores the comments that meet its
condition (``when: general.Game``: the stage ``general`` gave the label ``Game``) and adds ``<name>_labels`` and
``<name>_scores`` to the same result. A stage's model is a directory inside the version (``path``; what
``livetopic pipeline build`` publishes) or a pinned version of another repository (``repo`` and ``version``;
a relative ``repo`` is taken from the directory that holds this repository)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Condition", "Conditional", "StageSpec", "check_order", "check_stages", "parse_condition"]

STAGE_NAME = r"^[a-z][a-z0-9_]{0,31}$"


class Condition(BaseModel):
    """``stage.Label``: the comment got ``label`` from the earlier stage ``stage``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str
    label: str

    def __str__(self) -> str:
        return f"{self.stage}.{self.label}"


def parse_condition(text: str) -> Condition:
    stage, dot, label = text.partition(".")
    if not dot or not stage or not label:
        raise ValueError(f"a condition is STAGE.LABEL (e.g. general.Game), got {text!r}")
    return Condition(stage=stage, label=label)


class Conditional(BaseModel):
    """A pipeline's stage or a multi-task version's head: a name, and maybe a condition on an earlier one."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=STAGE_NAME)  # the result's fields: <name>_labels, <name>_scores
    when: str | None = None  # NAME.LABEL: only on the comments that got LABEL from the earlier stage or head

    @field_validator("when")
    @classmethod
    def _parses(cls, when: str | None) -> str | None:
        if when is not None:
            parse_condition(when)
        return when

    def condition(self) -> Condition | None:
        return parse_condition(self.when) if self.when is not None else None


class StageSpec(Conditional):
    path: str | None = None  # a model directory inside the version
    repo: str | None = None  # or a version of another repository…
    version: int | None = Field(default=None, ge=1)  # …pinned

    @model_validator(mode="after")
    def _check(self) -> StageSpec:
        if (self.path is None) == (self.repo is None):
            raise ValueError(f"stage {self.name!r}: give either path (inside the version) or repo and version")
        if self.repo is not None and self.version is None:
            raise ValueError(f"stage {self.name!r}: a stage from another repository names its version (pinned)")
        if self.path is not None and (self.path.startswith("/") or ".." in self.path.split("/")):
            raise ValueError(f"stage {self.name!r}: path {self.path!r} must stay inside the version")
        return self


def check_order(parts: Sequence[Conditional], kind: str = "stage") -> None:
    """Names unique; the first unconditional; each condition names an earlier one (``kind``: stage or head)."""
    seen: list[str] = []
    for i, part in enumerate(parts):
        if part.name in seen:
            raise ValueError(f"{kind} name {part.name!r} given twice")
        condition = part.condition()
        if i == 0 and condition is not None:
            raise ValueError(f"the first {kind} ({part.name!r}) scores every comment: it takes no condition")
        if condition is not None and condition.stage not in seen:
            raise ValueError(f"{kind} {part.name!r}: its condition {condition} names no earlier {kind}")
        seen.append(part.name)


def check_stages(stages: list[StageSpec]) -> None:
    """Stage names unique; the first stage unconditional; each condition names an earlier stage."""
    check_order(stages)
