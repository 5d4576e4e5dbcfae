"""The ONNX Runtime backend (CPU): the version's ONNX graph (:mod:`worker.model.onnx_export`: exported once,
transformer-optimised, int8 when asked) in an ORT session with the worker's intra-op threads."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError
from ..chunks import Chunk
from ..onnx_export import PUBLISHED_DIR, onnx_graph
from .base import read_labels

__all__ = ["OnnxRuntimeBackend", "sigmoid", "softmax"]

log = logging.getLogger(__name__)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^-x)`` without overflow for any x."""
    return np.exp(-np.logaddexp(0.0, -logits)).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


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


def _session(graph: Path, threads: int) -> Any:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(graph), session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own kinds (Fail, InvalidGraph…)
        raise ModelError(f"{graph}: ONNX Runtime cannot load it: {type(exc).__name__}: {exc}") from exc


class OnnxRuntimeBackend:
    """See :class:`~worker.model.backends.base.Backend`. CPU only; float32 or int8."""

    def __init__(self, model_dir: Path, *, dtype_name: str, threads: int) -> None:
        import onnxruntime as ort

        self.name = "onnxruntime"
        self.device, self.dtype_name = "cpu", dtype_name
        self.num_labels, self.id2label = read_labels(model_dir)
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
        self._inputs = [i.name for i in self.session.get_inputs()]
        unknown = set(self._inputs) - {"input_ids", "attention_mask"}
        if unknown:
            raise ModelError(f"{self.graph}: unexpected graph inputs {sorted(unknown)}")
        self.threads = threads
        self.description = (
            f"ONNX Runtime {ort.__version__} {dtype_name}, transformer-optimised graph, {threads} thread(s)"
        )
        # A pass costs little besides its arithmetic (no per-operator Python): cut chunks for padding mostly.
        self.chunk_overhead_tokens = 16

    def stage(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[Any, Any]:
        return np.ascontiguousarray(input_ids), np.ascontiguousarray(attention_mask)

    def probabilities(self, chunks: Sequence[Chunk], multi_label: bool) -> np.ndarray:
        if not chunks:
            return np.empty((0, self.num_labels), dtype=np.float32)
        logits = []
        for chunk in chunks:
            feed = {"input_ids": chunk.input_ids, "attention_mask": chunk.attention_mask}
            logits.append(self.session.run(["logits"], {k: feed[k] for k in self._inputs})[0])
        stacked = np.concatenate(logits).astype(np.float32, copy=False)
        return sigmoid(stacked) if multi_label else softmax(stacked)
