"""Publish gating: a trained model replaces the repository's newest version only when it is at least as good on
the same validation games (and has the same labels, unless the change is intended). Otherwise it is kept as a
candidate, and the verdict says why."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.model.repository import latest_version, read_manifest

from .config import TrainConfig
from .data import Dataset

__all__ = ["Verdict", "judge"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    publish: bool
    reason: str
    replaces: int | None = None  # the version it was compared with
    score: float | None = None  # the new model's validation micro F1
    current_score: float | None = None  # the replaced version's, on the same validation games

    def record(self) -> dict[str, Any]:
        """For the manifest's metrics and the run log."""
        return {
            "published": self.publish,
            "reason": self.reason,
            "replaces": self.replaces,
            "micro_f1": self.score,
            "replaced_micro_f1": self.current_score,
        }


def _current_score(vdir: Path, val_set: Dataset, device: str) -> float:
    from worker.model.load import load_model

    from .evaluate import score_model

    model = load_model(vdir, device=device, dtype="float32", smoke_test=False)
    if val_set.mask is not None and model.outputs == val_set.labels:  # the heads, each on its own rows
        from .multitask import heads_metrics

        return float(heads_metrics(model.predict_texts(val_set.texts), val_set, model.thresholds)[0]["micro_f1"] or 0)
    return float(score_model(model, val_set, val_set.labels)["micro_f1"] or 0.0)


def judge(
    repo: Path,
    labels: list[str],
    val_set: Dataset,
    validation: dict[str, Any],
    cfg: TrainConfig,
    device: str,
    epochs_run: int = 1,
) -> Verdict:
    """Whether the model whose validation metrics are ``validation`` (on ``val_set``) may become the next version
    of ``repo``. The newest version there is scored on the same validation rows (float32, its own thresholds).
    A run that finished no epoch is never published."""
    if epochs_run == 0:
        return Verdict(
            False,
            "no epoch finished within --max-minutes, so there is nothing trained to publish; give it more minutes",
        )
    current = latest_version(repo)
    if current is None:
        return Verdict(True, f"the first version of {repo}")
    theirs = read_manifest(repo / str(current)).labels
    if set(theirs) != set(labels):
        change = f"labels {labels} differ from version {current}'s {theirs}"
        if cfg.change_labels:
            return Verdict(True, f"{change} (--change-labels: workers swap it in)", current)
        return Verdict(
            False,
            f"its {change}; pass --change-labels if that is intended (running workers refuse an "
            "unannounced label change)",
            current,
        )
    score = validation.get("micro_f1")
    if not len(val_set) or score is None:
        why = f"no validation games to compare it with version {current} on"
        return Verdict(cfg.force, f"{why}{' (--force)' if cfg.force else '; --force publishes it anyway'}", current)
    theirs_score = _current_score(repo / str(current), val_set, device)
    games = len(set(val_set.groups))
    compared = (
        f"validation micro F1 {score:.4f} vs {theirs_score:.4f} of version {current} on the same "
        f"{games} validation games ({len(val_set)} comments)"
    )
    log.info("publish gate: %s", compared)
    if score >= theirs_score:
        return Verdict(True, compared, current, score, theirs_score)
    if cfg.force:
        return Verdict(True, f"{compared}: worse, published anyway (--force)", current, score, theirs_score)
    return Verdict(False, f"{compared}: worse than the version it would replace", current, score, theirs_score)
