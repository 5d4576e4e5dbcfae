"""The PyTorch backend: a transformers sequence classifier on CPU or CUDA; on CPU the encoder's Linear
layers optionally in int8 (:mod:`worker.model.kernels.int8`) and BERT through the lean forward
(:mod:`worker.model.kernels.fastbert`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError, ModelOutOfMemoryError
from ..chunks import Chunk
from ..kernels.fastbert import FastBert, fast_path_reason
from ..kernels.int8 import quantize_linear_layers

__all__ = ["TorchBackend", "load_network"]


def load_network(model_dir: Path, device: str, torch_dtype: Any) -> Any:
    from transformers import AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {"local_files_only": True, "use_safetensors": True, "trust_remote_code": False,
                              "dtype": torch_dtype}
    # SDPA's fused kernels pay off on GPUs; on CPU, for chat-length sequences (~10-20 tokens), the
    # flash-attention kernel is about twice as slow as plain matmul + softmax ("eager").
    attention = "sdpa" if device == "cuda" else "eager"
    try:
        try:
            return AutoModelForSequenceClassification.from_pretrained(str(model_dir), attn_implementation=attention,
                                                                      **kwargs)
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
        quantized = dtype_name == "int8"
        network = load_network(model_dir, device, torch.float32 if quantized else getattr(torch, dtype_name))
        network.eval()
        network.to(device)
        if quantized:
            quantize_linear_layers(network.base_model)  # the classification head stays float
        self.network = network
        self.num_labels = int(network.config.num_labels)
        self.id2label = {int(k): str(v) for k, v in network.config.id2label.items()}
        self._forward = torch.compile(network, dynamic=True) if compile else network
        # On CPU, BERT classifiers run through a lean forward of the same weights: measured on the bert-base
        # shape in int8, a quarter less time for one comment, a tenth for five.
        reason = "CUDA: transformers with SDPA" if device == "cuda" else (
            "torch.compile asked for" if compile else fast_path_reason(network))
        self.fast_path = FastBert(network) if reason is None else None
        self.description = "lean BERT forward" if reason is None else f"transformers forward: {reason}"
        self._pin = device == "cuda"
        # On CPU a few milliseconds of Python and small-matrix inefficiency per pass; on a GPU kernel launches.
        self.chunk_overhead_tokens = 2048 if device == "cuda" else 32

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
                if self.fast_path is not None:
                    logits = self.fast_path(input_ids, attention_mask).float()
                else:
                    logits = self._forward(input_ids=input_ids, attention_mask=attention_mask).logits.float()
                results.append(torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1))
            if not results:
                return np.empty((0, self.num_labels), dtype=np.float32)
            # One device→host copy (and one synchronisation) per batch, not per chunk.
            return np.asarray(torch.cat(results).cpu().numpy(), dtype=np.float32)
