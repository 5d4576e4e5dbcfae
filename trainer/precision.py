"""Before a version is published: how often each reduced precision the worker may serve it in gives the
same labels as float32, on validation comments. The result goes into the manifest's ``dtype_agreement``;
the worker's ``dtype=auto`` skips any precision below 99.5% there."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path

from worker.model.agreement import measure_agreement
from worker.model.load import load_version
from worker.model.precision import cpu_has_native_bf16
from worker.model.repository import Manifest
from worker.model.runtime import LoadedModel

__all__ = ["agreement_dtypes", "record_agreement"]

log = logging.getLogger(__name__)


def agreement_dtypes() -> list[tuple[str, list[str]]]:
    """(device, dtypes) to check: int8 on CPU always (the worker's CPU path), bfloat16 on CPU where it runs
    natively, and bfloat16/float16 on CUDA when there is a GPU."""
    import torch

    checks = [("cpu", ["int8", *(["bfloat16"] if cpu_has_native_bf16() else [])])]
    if torch.cuda.is_available():
        checks.append(("cuda", [*(["bfloat16"] if torch.cuda.is_bf16_supported() else []), "float16"]))
    return checks


def record_agreement(model_dir: Path, manifest: Manifest, texts: Sequence[str], n: int,
                     seed: int = 0) -> dict[str, float]:
    """Label agreement with float32 of each precision in :func:`agreement_dtypes` on up to ``n`` of
    ``texts`` (a seeded sample), for the saved model in ``model_dir`` under ``manifest``'s thresholds.
    Where a precision is checked on two devices, the lower agreement is kept."""
    sample = list(texts)
    random.Random(seed).shuffle(sample)
    sample = sample[:n]
    out: dict[str, float] = {}
    if not sample:
        return out
    for device, dtypes in agreement_dtypes():
        def load(dtype: str, device: str = device) -> LoadedModel:
            return load_version(model_dir, manifest, 0, device=device, dtype=dtype)

        for dtype, found in measure_agreement(load, sample, dtypes).items():
            if dtype != "float32":
                out[dtype] = min(out.get(dtype, 1.0), round(found.label_agreement, 5))
                log.info("label agreement with float32, %s on %s: %.2f%% of %d validation comments "
                         "(%.0f comments/s in-process)", dtype, device, 100 * found.label_agreement, len(sample),
                         found.comments_per_s)
    return out
