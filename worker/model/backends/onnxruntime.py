"""The ONNX Runtime backend (CPU): the version's ONNX graph (:mod:`worker.model.onnx_export`: exported once,
transformer-optimised, int8 when asked) in an ORT session with the worker's intra-op threads.

ORT's own graph optimisations run when the session is made, all but one: the fusion of a residual add and its
layer norm (``SkipLayerNormFusion``), whose CPU kernel takes 4.7 times as long as the two operators it replaces (a
quarter of an int8 bert-base's time, :mod:`worker.model.onnx_export`). A graph published before the export
stopped fusing them is split back in memory (:mod:`worker.model.onnx_edit`); the file is not touched."""

from __future__ import annotations

import logging
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError
from ..onnx_edit import split_skip_layer_norms
from ..onnx_export import PUBLISHED_DIR, onnx_graph
from .graph import GraphBackend

__all__ = ["OnnxRuntimeBackend"]

log = logging.getLogger(__name__)


def session_options(threads: int) -> Any:
    """One session per worker: ``threads`` intra-op threads, sequential, all graph optimisations; idle pool threads
    sleep instead of spinning (as OpenMP's passive policy: other work shares the cores)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return options


# ORT's optimisers kept off (by name): see the module docstring
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


def _mentions(graph: Path, name: bytes) -> bool:
    """Whether the file's bytes hold ``name`` (an operator's), read through a memory map: no parse, no copy."""
    with open(graph, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return False
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(name) >= 0


def _source(graph: Path) -> str | bytes:
    """What the session reads: the file's path, or the graph with its fused layer norms split (serialised; not
    for a graph whose weights lie in files beside it, which a serialised graph would lose). Only a graph whose
    bytes name the fused operator is parsed here (0.4 s and the graph's size in memory for a float32 bert-base)."""
    import onnx

    if not _mentions(graph, b"SkipLayerNormalization"):
        return str(graph)
    model = onnx.load(str(graph), load_external_data=False)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return str(graph)
    count = split_skip_layer_norms(model)
    if not count:
        return str(graph)
    log.info("%s: %d fused layer norms split (in memory) for speed", graph, count)
    return bytes(model.SerializeToString())


def _session(graph: Path, threads: int) -> Any:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(
            _source(graph),
            session_options(threads),
            providers=["CPUExecutionProvider"],
            disabled_optimizers=DISABLED_OPTIMIZERS,
        )
    except Exception as exc:  # ORT raises its own kinds (Fail, InvalidGraph…)
        raise ModelError(f"{graph}: ONNX Runtime cannot load it: {type(exc).__name__}: {exc}") from exc


class OnnxRuntimeBackend(GraphBackend):
    """See :class:`~worker.model.backends.base.Backend`. CPU only; float32 or int8."""

    def __init__(self, model_dir: Path, *, dtype_name: str, threads: int) -> None:
        import onnxruntime as ort

        super().__init__("onnxruntime", model_dir, dtype_name)
        self.graph = onnx_graph(model_dir, dtype_name)
        try:
            self.session = _session(self.graph, threads)
        except ModelError as exc:
            if self.graph.parent.name != PUBLISHED_DIR:
                raise
            # made by another exporter than this ONNX Runtime reads (an older ORT, a newer opset)
            log.warning("%s; exporting the version again for this ONNX Runtime", exc)
            self.graph = onnx_graph(model_dir, dtype_name, published=False)
            self.session = _session(self.graph, threads)
        self._check_inputs([i.name for i in self.session.get_inputs()], self.graph)
        self.threads = threads
        self.description = (
            f"ONNX Runtime {ort.__version__} {dtype_name}, transformer-optimised graph, {threads} thread(s)"
        )

    def _logits(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.session.run(["logits"], feed)[0])
