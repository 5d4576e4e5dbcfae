"""The OpenVINO backend (CPU): float32 and bfloat16 from the version's float32 ONNX graph (bfloat16 as OpenVINO's
inference precision, on CPUs with native bf16 only), int8 from the OpenVINO model NNCF made when the version was
published (:mod:`worker.model.openvino_export`). It reads only files the version's manifest lists with their
sha256 (or, on a staged version, ones with recorded sha256s) and writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError
from ..chunks import PACK_TOKENS, PACKED_PASS_TOKENS, Chunk, Packing
from ..onnx_export import onnx_graph
from ..openvino_export import int8_model
from ..precision import cpu_class, cpu_has_native_bf16
from ..sources import longest_input
from .graph import GraphBackend

__all__ = ["OpenVinoBackend", "compile_config", "pass_tokens"]

DTYPES = ("float32", "bfloat16", "int8")
AMX_PASS_TOKENS = 2048
SMALL_PASS_ROWS = 4  # a half-loaded worker's passes: a few comments, packed into 1-4 rows


def _bf16_precision(dtype_name: str) -> bool:
    """Whether the layers a model does not hold in int8 (layer norms, GELU, softmax) run in bf16: bfloat16 asked
    for, or int8 on an AMX CPU (6% faster at batch 256 on the 2-core Xeon, with the same label agreement:
    docs/PERFORMANCE.md). OpenVINO itself would pick bf16 on every CPU with native bf16; elsewhere it is not
    measured, so float32."""
    return dtype_name == "bfloat16" or (dtype_name == "int8" and cpu_class() == "amx")


def _generated_attention() -> bool:
    """Whether OpenVINO runs attention as its generated kernels ("snippets", its default) rather than as its
    MatMul and Softmax nodes: not on AMX CPUs, where the nodes were as fast (int8, one thread, bert-base: 510
    against 495 comments/s at batch 256, the same at batches of 16 and 4) and a pass shape met for the first time
    cost ~10 ms to prepare instead of ~45 (docs/PERFORMANCE.md). Elsewhere not measured: OpenVINO's default."""
    return cpu_class() != "amx"


def compile_config(dtype_name: str, threads: int) -> dict[str, Any]:
    """One stream, ``threads`` threads, latency mode (one worker per core, as ONNX Runtime's sessions), no pinning
    of threads to cores (OpenVINO pins by default: every worker process would pin to the same first core), the
    inference precision (:func:`_bf16_precision`) and how attention runs (:func:`_generated_attention`)."""
    import openvino.properties as props
    import openvino.properties.hint as hints

    config: dict[str, Any] = {
        props.inference_num_threads: max(1, threads),
        props.num_streams: 1,
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        hints.enable_cpu_pinning: False,
        hints.inference_precision: "bf16" if _bf16_precision(dtype_name) else "f32",
    }
    if not _generated_attention():
        config["SNIPPETS_MODE"] = "DISABLE"  # the CPU plugin's own key (ov::intel_cpu::snippets_mode)
    return config


def pass_tokens() -> int:
    """The most tokens of a packed pass: 2048 on AMX CPUs, whose int8 and bf16 tiles run the products faster on
    more rows (packed passes of 2048 tokens were 7-10% faster than of 512 on the 2-core Xeon, int8, one thread;
    ONNX Runtime's were not), else the default."""
    return AMX_PASS_TOKENS if cpu_class() == "amx" else PACKED_PASS_TOKENS


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
        self.pass_tokens = pass_tokens()
        self.source = _source(model_dir, dtype_name)
        try:
            core = ov.Core()
            compiled = core.compile_model(core.read_model(str(self.source)), "CPU", compile_config(dtype_name, threads))
        except Exception as exc:  # OpenVINO raises RuntimeError and its own kinds
            raise ModelError(f"{self.source}: OpenVINO cannot load it: {type(exc).__name__}: {exc}") from exc
        self._check_inputs([port.get_any_name() for port in compiled.inputs], self.source)
        self._output = compiled.outputs[0]
        self._request = compiled.create_infer_request()
        self._prepare_small_passes(min(PACK_TOKENS, longest_input(model_dir)))
        self.description = f"OpenVINO {ov.get_version().split('-')[0]} {dtype_name}, {threads} thread(s)"

    def _prepare_small_passes(self, widest: int) -> None:
        """Run each shape of a small pass once (1 to :data:`SMALL_PASS_ROWS` rows, every width step up to
        ``widest``), so that a half-loaded worker does not pay OpenVINO's first-time preparation of a shape (about
        40 ms) inside a comment's latency: in-process, half-load-sized passes on the 2-core Xeon, the slowest
        of 800 took 146 ms against 70 with this done first (about 3 s at load for bert-base there)."""
        for rows in range(1, SMALL_PASS_ROWS + 1):
            for width in range(self.width_step, widest + 1, self.width_step):
                ids = np.ones((rows, width), dtype=np.int64)  # a comment of ``width`` tokens a row
                packing = Packing(
                    np.broadcast_to(np.arange(width, dtype=np.int64), ids.shape).copy(),
                    np.zeros_like(ids),
                    np.arange(rows, dtype=np.int64) * width,
                )
                chunk = Chunk(list(range(rows)), ids, ids, packing if self.pack_tokens else None)
                try:
                    self._logits(chunk.feed(self._inputs))
                except Exception as exc:  # OpenVINO raises RuntimeError and its own kinds
                    raise ModelError(f"{self.source}: OpenVINO cannot run it: {type(exc).__name__}: {exc}") from exc

    def _logits(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return np.array(self._request.infer(feed)[self._output], dtype=np.float32)
