"""Before a version is published: how often each reduced precision the worker may serve it in, on each backend,
gives the same labels as float32, on validation comments. The result goes into the manifest's
``dtype_agreement`` under ``"backend:dtype"`` keys (``"onnxruntime:int8"``); the worker's ``auto`` skips any
combination below 99.5% there."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path

from worker.model.agreement import FULL_BATCH, SMALL_BATCH, measure_agreement
from worker.model.load import load_version
from worker.model.openvino_export import prepare_int8
from worker.model.precision import agreement_key, auto_candidates, cpu_class
from worker.model.repository import Manifest
from worker.model.runtime import LoadedModel

__all__ = ["agreement_engines", "record_agreement"]

log = logging.getLogger(__name__)


def agreement_engines() -> list[tuple[str, list[str]]]:
    """(device, ``"backend:dtype"`` names) to check: on CPU every reduced-precision engine ``auto`` may rank for
    this CPU class (:data:`~worker.model.precision.CLASS_ORDER`), and the float32 ones beside PyTorch's; PyTorch
    bfloat16/float16 on CUDA when there is a GPU."""
    import torch

    cpu = [f"{b}:{d}" for b, d in auto_candidates("cpu") if f"{b}:{d}" != "torch:float32"]
    checks = [("cpu", cpu)] if cpu else []
    if torch.cuda.is_available():
        checks.append(
            (
                "cuda",
                [
                    agreement_key("torch", d)
                    for d in [*(["bfloat16"] if torch.cuda.is_bf16_supported() else []), "float16"]
                ],
            )
        )
    return checks


def record_agreement(
    model_dir: Path, manifest: Manifest, texts: Sequence[str], n: int, seed: int = 0
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Label agreement with float32 (PyTorch) of each engine in :func:`agreement_engines` on up to ``n`` of
    ``texts`` (a seeded sample), for the saved model in ``model_dir`` under ``manifest``'s thresholds, and the
    engines' in-process comments/s on CPU under this CPU class (the manifest's ``engine_rates``, which ``auto``
    ranks by: :attr:`~worker.model.agreement.DtypeAgreement.served_rate`, full and small batches). Where an
    engine is checked on two devices, the lower agreement is kept. The OpenVINO int8 model is made first (it is
    published with the version); an engine that cannot load the model is left out."""
    sample = list(texts)
    random.Random(seed).shuffle(sample)
    sample = sample[:n]
    out: dict[str, float] = {}
    rates: dict[str, float] = {}
    if not sample:
        return out, {}
    for device, names in agreement_engines():
        if "openvino:int8" in names and prepare_int8(model_dir, sample) is None:
            names = [n for n in names if n != "openvino:int8"]

        def load(name: str, device: str = device) -> LoadedModel:
            backend, _, dtype = name.rpartition(":")
            return load_version(model_dir, manifest, 0, device=device, dtype=dtype, backend=backend or "torch")

        for name, found in measure_agreement(load, sample, names, small_batches=(SMALL_BATCH,)).items():
            if device == "cpu":
                rates["torch:float32" if name == "float32" else name] = round(found.served_rate, 1)
            if name != "float32":
                out[name] = min(out.get(name, 1.0), round(found.label_agreement, 5))
                log.info(
                    "label agreement with float32, %s on %s: %.2f%% of %d validation comments "
                    "(in-process: %.0f comments/s in batches of %d, %.0f in batches of %d)",
                    name,
                    device,
                    100 * found.label_agreement,
                    len(sample),
                    found.comments_per_s,
                    FULL_BATCH,
                    found.small_batch_comments_per_s.get(SMALL_BATCH, float("nan")),
                    SMALL_BATCH,
                )
    return out, ({cpu_class(): rates} if rates else {})
