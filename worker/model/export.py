"""What is made once when a version is published: its ONNX graphs for ONNX Runtime (float32 and int8, int8 being
dynamic quantisation: nothing to calibrate), stored inside the version as ``onnx/model-<dtype>.onnx``, and
OpenVINO's int8 model (NNCF, calibrated: ``openvino/model-int8.xml``/``.bin``), all listed in its manifest with
their sha256 like every other file. A worker or pod with a read-only model volume then serves them as they are
and exports nothing (:func:`~worker.model.onnx_export.onnx_graph`, :func:`~.openvino_export.int8_model`)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from ..errors import ModelError
from .onnx_export import ONNX_DIR, PUBLISHED_DIR, onnx_graph, published_name
from .openvino_export import publish_openvino
from .precision import onnxruntime_available

__all__ = ["GRAPH_DTYPES", "publish_graphs"]

log = logging.getLogger(__name__)

GRAPH_DTYPES: tuple[str, ...] = ("float32", "int8")  # what ONNX Runtime serves on CPUs (precision._SUPPORTED)


def publish_graphs(stage: Path, dtypes: Sequence[str] = GRAPH_DTYPES, texts: Sequence[str] = ()) -> list[str]:
    """Put the version in ``stage`` (its Hugging Face files, not yet published) into ONNX, one graph per dtype
    that ``stage/onnx/`` lacks, and into OpenVINO int8 (:mod:`.openvino_export`, calibrated on ``texts``, else the
    bundled sample), and remove the stage's ``.onnx/`` cache; returns the files made (relative).

    A verified graph already cached (the label agreement's, the user's cache) is copied instead of exported again.
    A network that does not export gets no graph (a WARNING): workers serve it with PyTorch."""
    if not onnxruntime_available():
        log.warning("%s: onnx or onnxruntime is not installed: published without ONNX graphs", stage)
        return []
    made: list[str] = []
    try:
        for dtype in dtypes:
            target = stage / PUBLISHED_DIR / published_name(dtype)
            if target.is_file():
                continue
            try:
                graph = onnx_graph(stage, dtype)
            except ModelError as exc:
                log.warning("no ONNX graph published (workers serve this version with PyTorch): %s", exc)
                break
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(graph, target)
            made.append(target.relative_to(stage).as_posix())
        if "float32" in dtypes and (stage / PUBLISHED_DIR / published_name("float32")).is_file():
            made += publish_openvino(stage, texts)
    finally:
        shutil.rmtree(stage / ONNX_DIR, ignore_errors=True)
    return made
