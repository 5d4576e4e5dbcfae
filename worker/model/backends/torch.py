"""The PyTorch backend: a transformers sequence classifier on CUDA (bfloat16, float16, float32) or CPU (float32,
bfloat16). On CPU ``auto`` prefers ONNX Runtime (:mod:`.onnxruntime`); this backend serves CPUs when asked for, or
when a version does not export."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError, ModelOutOfMemoryError
from ..chunks import PACKED_PASS_TOKENS, Chunk

__all__ = ["TorchBackend", "load_network"]


def load_network(model_dir: Path, device: str, torch_dtype: Any) -> Any:
    from transformers import AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {
        "local_files_only": True,
        "use_safetensors": True,
        "trust_remote_code": False,
        "dtype": torch_dtype,
    }
    # SDPA's fused kernels pay off on GPUs; on CPU, for chat-length sequences (~10-20 tokens), the
    # flash-attention kernel is about twice as slow as plain matmul + softmax ("eager").
    attention = "sdpa" if device == "cuda" else "eager"
    try:
        try:
            return AutoModelForSequenceClassification.from_pretrained(
                str(model_dir), attn_implementation=attention, **kwargs
            )
        except (ValueError, ImportError):
            return AutoModelForSequenceClassification.from_pretrained(str(model_dir), **kwargs)
    except Exception as exc:  # transformers raises many kinds; all mean "cannot load"
        raise ModelError(f"{model_dir}: cannot load model: {type(exc).__name__}: {exc}") from exc


class TorchBackend:
    """See :class:`~worker.model.backends.base.Backend`."""

    def __init__(self, model_dir: Path, *, device: str, dtype_name: str, compile: bool = False) -> None:
        import torch

        self.name = "torch"
        self.device, self.dtype_name = device, dtype_name
        if dtype_name not in ("float32", "bfloat16", "float16"):
            raise ModelError(f"the torch backend runs float32, bfloat16 and float16, not {dtype_name}")
        network = load_network(model_dir, device, getattr(torch, dtype_name))
        network.eval()
        network.to(device)
        self.network = network
        self.num_labels = int(network.config.num_labels)
        self.id2label = {int(k): str(v) for k, v in network.config.id2label.items()}
        self._forward = torch.compile(network, dynamic=True) if compile else network
        self.description = (
            f"transformers {dtype_name}"
            + (" with SDPA" if device == "cuda" else "")
            + (", torch.compile" if compile else "")
        )
        self._pin = device == "cuda"
        # On CPU a few milliseconds of Python and small-matrix inefficiency per pass; on a GPU kernel launches.
        self.chunk_overhead_tokens = 2048 if device == "cuda" else 32
        self.pack_tokens = 0  # transformers' forward: one comment per row
        self.width_step = 1
        self.pass_tokens = PACKED_PASS_TOKENS  # unused: not packed

    def stage(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[Any, Any]:
        import torch

        ids, mask = torch.from_numpy(input_ids), torch.from_numpy(attention_mask)
        if self._pin:  # pinned host memory: the copy to the GPU overlaps the previous chunk's kernels
            ids, mask = ids.pin_memory(), mask.pin_memory()
        return ids, mask

    def probabilities(self, chunks: Sequence[Chunk], multi_label: bool) -> np.ndarray:
        import torch

        try:
            return self._probabilities(chunks, multi_label)
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            raise ModelOutOfMemoryError(f"CUDA out of memory: {exc}") from exc

    def _probabilities(self, chunks: Sequence[Chunk], multi_label: bool) -> np.ndarray:
        import torch

        results = []
        with torch.inference_mode():
            for chunk in chunks:
                input_ids = chunk.input_ids.to(self.device, non_blocking=True)
                attention_mask = chunk.attention_mask.to(self.device, non_blocking=True)
                logits = self._forward(input_ids=input_ids, attention_mask=attention_mask).logits.float()
                results.append(torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1))
            if not results:
                return np.empty((0, self.num_labels), dtype=np.float32)
            # One device→host copy (and one synchronisation) per batch, not per chunk.
            return np.asarray(torch.cat(results).cpu().numpy(), dtype=np.float32)
