"""A model from elsewhere into the repository (``model pull``, ``model add``), the way ``train`` publishes: staged
(:mod:`worker.model.sources`), loaded and smoke-tested, judged by the trainer's publish gate
(:func:`trainer.gate.judge`: the label-change rule; with ``--data``, the score of the version it would replace
on the same labelled comments), its label agreement in reduced precisions with float32 recorded
(:func:`trainer.precision.record_agreement`: ``dtype=auto`` reads it), its ONNX graphs made
(:mod:`worker.model.export`), then published atomically as the next version, or kept as a candidate."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..model.repository import CANDIDATES_DIR, Manifest, publish_version, read_manifest
from ..model.sources import Staged, manifest_for
from ..text import Mode

__all__ = ["Admission", "Admitted", "admit"]

log = logging.getLogger("livetopic")

AGREEMENT_N = 2000  # comments the label agreement is measured on, at most (as train's default)


@dataclass(frozen=True)
class Admission:
    """What ``model pull`` and ``model add`` were asked (their options, declared in :mod:`.models`)."""

    repo: Path
    name: str | None = None
    labels: list[str] | None = None
    preprocess: Mode = "raw"
    max_length: int | None = None
    thresholds: dict[str, float] | float | None = None  # one for every label, or per label
    data: list[Path] = field(default_factory=list)  # labelled comments: the gate compares on them
    texts: list[Path] = field(default_factory=list)  # comments for the label agreement
    force: bool = False
    change_labels: bool = False


@dataclass(frozen=True)
class Admitted:
    number: int
    path: Path
    published: bool
    reason: str
    manifest: Manifest


def _sample_chat() -> Path:
    return Path(str(resources.files("worker") / "data" / "sample_chat.jsonl"))


def _texts(paths: Sequence[Path]) -> list[str]:
    from ..inputs import read_records

    return [r.fields["text"] for r in read_records(list(paths))]


def _comparison(paths: Sequence[Path], labels: list[str]) -> Any:
    """The labelled comments of ``paths`` (label columns named as the model's labels), or none."""
    from trainer.data import Dataset, load_dataset

    if not paths:
        return Dataset([], list(labels), np.zeros((0, len(labels)), dtype=np.float32), [])
    return load_dataset(paths, labels)


def _moved(stage: Path) -> Callable[[Path], None]:
    def write(out: Path) -> None:
        for item in stage.iterdir():
            shutil.move(str(item), str(out / item.name))

    return write


def _judge(staged: Staged, manifest: Manifest, options: Admission) -> tuple[Any, dict[str, Any], list[str]]:
    """(the gate's verdict, the metrics on ``--data``, the comments for the label agreement)."""
    from trainer.config import TrainConfig
    from trainer.evaluate import score_model
    from trainer.gate import judge

    from ..model.load import load_version

    model = load_version(staged.path, manifest, 0, device="cpu", dtype="float32", backend="torch")
    model.smoke_test()
    rows = _comparison(options.data, manifest.labels)
    validation = score_model(model, rows, manifest.labels) if len(rows) else {}
    del model
    verdict = judge(
        options.repo,
        manifest.labels,
        rows,
        validation,
        TrainConfig.model_validate({"force": options.force, "change_labels": options.change_labels}),
        "cpu",
    )
    texts = _texts(options.texts) if options.texts else list(rows.texts) or _texts([_sample_chat()])
    return verdict, validation, texts


def admit(stage: Callable[[Path], Staged], default_name: str, options: Admission) -> Admitted:
    """Stage the model (``stage(directory)``), judge it, then publish it into ``options.repo`` or keep it as a
    candidate (``REPO/candidates/<n>``)."""
    from trainer.precision import record_agreement

    from ..model.export import publish_graphs

    options.repo.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".stage-", dir=options.repo) as work:  # beside: files move, not copy
        staged = stage(Path(work) / "model")
        manifest = manifest_for(
            staged,
            name=options.name or default_name,
            labels=options.labels,
            preprocess=options.preprocess,
            max_length=options.max_length,
            thresholds=options.thresholds,
            change_labels=options.change_labels,
        )
        verdict, validation, texts = _judge(staged, manifest, options)
        agreement, rates = record_agreement(staged.path, manifest, texts, AGREEMENT_N)
        metrics = {
            "publish": verdict.record(),
            "dtype_agreement": agreement,
            **({"validation": validation} if validation else {}),
        }
        manifest = manifest.model_copy(update={"dtype_agreement": agreement, "engine_rates": rates, "metrics": metrics})
        graphs = publish_graphs(staged.path, texts=texts)
        log.info("%s: ONNX graphs published with it: %s", staged.source.describe(), ", ".join(graphs) or "none")
        target = options.repo if verdict.publish else options.repo / CANDIDATES_DIR
        number = publish_version(target, _moved(staged.path), manifest)
    return Admitted(number, target / str(number), verdict.publish, verdict.reason, read_manifest(target / str(number)))
