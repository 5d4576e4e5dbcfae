"""Publish a trained model as the next version of a repository: the manifest (labels, thresholds,
preprocessing, metrics, data fingerprint, every training argument), the Hugging Face files, and the label
agreement of reduced precisions with float32, measured on validation comments before the version is visible."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from worker.model.export import publish_graphs
from worker.model.ngrams import NgramMember
from worker.model.repository import Manifest, PreprocessingSpec, ProblemType, publish_version

from .config import TrainConfig
from .layers import single_label
from .modeling import Built
from .multitask import HEADS
from .precision import record_agreement

__all__ = ["CANDIDATES", "manifest_for", "publish"]

CANDIDATES = "candidates"  # REPO/candidates/<n>: runs that were not published (invisible to workers)


def manifest_for(
    cfg: TrainConfig,
    labels: list[str],
    thresholds: dict[str, float],
    spec: PreprocessingSpec,
    metrics: dict[str, Any],
    fingerprint: str,
    training_args: dict[str, Any],
) -> Manifest:
    problem: ProblemType = "single_label_classification" if single_label(cfg.layer) else "multi_label_classification"
    return Manifest(
        name=cfg.name,
        labels=labels,
        problem_type=problem,
        thresholds=thresholds,
        preprocessing=spec,
        max_length=cfg.max_length,
        metrics=metrics,
        data_fingerprint=fingerprint,
        training_args=training_args,
        labels_change_intended=cfg.change_labels,
        heads=HEADS if cfg.layer == "multitask" else [],
    )


def publish(
    out_repo: Path | str,
    built: Built,
    manifest: Manifest,
    member: NgramMember | None,
    stage: Path,
    val_texts: Sequence[str],
    cfg: TrainConfig,
) -> tuple[int, Manifest]:
    """Save the model, its tokenizer and its n-gram member (where it has one) into ``stage``, record the dtype
    agreement (``cfg.agreement_n`` validation comments), then publish them atomically into ``out_repo`` (a
    repository, or its candidates directory); returns (version number, the manifest as published)."""
    built.model.to("cpu")
    built.model.save_pretrained(str(stage))
    built.tokenizer.save_pretrained(str(stage))
    if member is not None:
        member.save(stage)
    if cfg.agreement_n > 0 and val_texts:
        agreement, rates = record_agreement(stage, manifest, val_texts, cfg.agreement_n, cfg.seed)
        manifest = manifest.model_copy(
            update={
                "dtype_agreement": agreement,
                "engine_rates": rates,
                "metrics": {**manifest.metrics, "dtype_agreement": agreement},
            }
        )

    def write(out: Path) -> None:
        shutil.copytree(stage, out, dirs_exist_ok=True)
        publish_graphs(out, texts=val_texts)  # made once, published with the version: workers export nothing

    return publish_version(out_repo, write, manifest), manifest
