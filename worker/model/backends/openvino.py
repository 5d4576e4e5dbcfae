"""The OpenVINO backend (CPU): float32 and bfloat16 from the version's float32 ONNX graph (bfloat16 as OpenVINO's
inference precision, on CPUs with native bf16 only), int8 from the OpenVINO model NNCF made when the version was
published (:mod:`worker.model.openvino_export`). It reads only files the version's manifest lists with their
sha256 (or, on a staged version, ones with recorded sha256s) and writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError
from ..onnx_export import onnx_graph
from ..openvino_export import int8_model
from ..precision import cpu_has_native_bf16
from .graph import GraphBackend

__all__ = ["OpenVinoBackend", "compile_config"]

DTYPES = ("float32", "bfloat16", "int8")


def compile_config(dtype_name: str, threads: int) -> dict[str, Any]:
    """One stream, ``threads`` threads, latency mode (one worker per core, as ONNX Runtime's sessions), no pinning
    of threads to cores (OpenVINO pins by default: every worker process would pin to the same first core), and the
    inference precision: bf16 only when asked for (OpenVINO would pick it by itself on AMX CPUs)."""
    import openvino.properties as props
    import openvino.properties.hint as hints

    return {
        props.inference_num_threads: max(1, threads),
        props.num_streams: 1,
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        hints.enable_cpu_pinning: False,
        hints.inference_precision: "bf16" if dtype_name == "bfloat16" else "f32",
    }


def _source(model_dir: Path, dtype_name: str) -> Path:
    if dtype_name not in DTYPES:
        raise ModelError(f"the openvino backend runs {', '.join(DTYPES)}, not {dtype_name}")
    if dtype_name == "bfloat16" and not cpu_has_native_bf16():
        raise ModelError("OpenVINO bfloat16 needs a CPU with native bf16 (AVX512-BF16 or AMX)")
    return int8_model(model_dir) if dtype_name == "int8" else onnx_graph(model_dir, "float32")


class OpenVinoBackend(GraphBackend):
    """See :class:`~worker.model.backends.base.Backend`. CPU only; float32, bfloat16 or int8."""

    # OpenVINO prepares its kernels for each new input shape (15-25 ms the first time, bert-base int8 on an AMD
    # EPYC): widths in steps of 4 tokens keep the shapes a worker meets few, so they are all prepared soon, and
    # cost little padding (in steps of 16 a pass over one or two comments cost 25% more)
    width_step = 4

    def __init__(self, model_dir: Path, *, dtype_name: str, threads: int) -> None:
        import openvino as ov

        super().__init__("openvino", model_dir, dtype_name)
        self.source = _source(model_dir, dtype_name)
        try:
            core = ov.Core()
            compiled = core.compile_model(core.read_model(str(self.source)), "CPU", compile_config(dtype_name, threads))
        except Exception as exc:  # OpenVINO raises RuntimeError and its own kinds
            raise ModelError(f"{self.source}: OpenVINO cannot load it: {type(exc).__name__}: {exc}") from exc
        self._check_inputs([port.get_any_name() for port in compiled.inputs], self.source)
        self._output = compiled.outputs[0]
        self._request = compiled.create_infer_request()
        self.description = f"OpenVINO {ov.get_version().split('-')[0]} {dtype_name}, {threads} thread(s)"

    def _logits(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return np.array(self._request.infer(feed)[self._output], dtype=np.float32)
