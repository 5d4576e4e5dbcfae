"""Load a model version and turn token ids into probabilities and labels.

Thread model: :meth:`LoadedModel.encode` and :meth:`LoadedModel.prepare` run on the tokenizer thread,
:meth:`LoadedModel.run` on the model thread; both are plain blocking functions that the service calls
through dedicated executors, never on the event loop.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .device import resolve_device
from .errors import ModelError, RepositoryError
from .fastbert import FastBert, fast_path_reason
from .int8 import quantize_linear_layers
from .repository import MANIFEST_NAME, Manifest, read_manifest, resolve_version

__all__ = ["Chunk", "LoadedModel", "Prepared", "load_model", "locate_model", "plan_chunks"]

log = logging.getLogger(__name__)


def plan_chunks(lengths: Sequence[int], max_tokens: int, overhead_tokens: int = 32) -> list[list[int]]:
    """Split a batch into length-sorted chunks that minimise padded tokens plus a per-chunk overhead.

    Returns lists of indices into ``lengths``. Rows are sorted by length and cut into contiguous runs; the
    cut points minimise ``Σ rows × longest + overhead_tokens`` over the chunks (dynamic programming over
    the distinct lengths, so it is cheap), with no chunk over ``max_tokens`` padded tokens unless a single
    row is that long. ``overhead_tokens`` prices one more forward pass in tokens' worth of compute: small
    on CPU (Python overhead and small-matrix inefficiency), large on GPUs (kernel launches).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    if not order:
        return []
    # Groups of equal length in sorted order: widths[g], and ends[g] = rows in groups 0..g.
    widths: list[int] = []
    ends: list[int] = []
    for n, i in enumerate(order, 1):
        if widths and lengths[i] == widths[-1]:
            ends[-1] = n
        else:
            widths.append(lengths[i])
            ends.append(n)
    starts = [0, *ends]

    def pieces(rows: int, width: int) -> int:
        per = max(1, max_tokens // max(1, width))
        return -(-rows // per)

    inf = float("inf")
    best = [0.0] + [inf] * len(widths)
    cut = [0] * (len(widths) + 1)
    for j in range(1, len(widths) + 1):  # best plan for groups 0..j-1
        width = widths[j - 1]
        for i in range(j - 1, -1, -1):  # last chunk run: groups i..j-1
            rows = ends[j - 1] - starts[i]
            cost = best[i] + rows * width + pieces(rows, width) * overhead_tokens
            if cost < best[j]:
                best[j], cut[j] = cost, i
            if rows * width > 4 * max_tokens:  # longer runs only add padding and pieces
                break
    runs: list[tuple[int, int]] = []
    j = len(widths)
    while j > 0:
        runs.append((cut[j], j))
        j = cut[j]
    chunks: list[list[int]] = []
    for i, j in reversed(runs):
        run = order[starts[i] : ends[j - 1]]
        size = -(-len(run) // pieces(len(run), widths[j - 1]))
        chunks.extend(run[s : s + size] for s in range(0, len(run), size))
    return chunks


@dataclass(slots=True)
class Chunk:
    rows: list[int]  # indices into the batch
    input_ids: Any  # torch.Tensor [rows, length]
    attention_mask: Any


@dataclass(slots=True)
class Prepared:
    size: int
    chunks: list[Chunk] = field(default_factory=list)
    tokens: int = 0
    padded_tokens: int = 0


def _manifest_from_config(model_dir: Path) -> Manifest:
    """A plain Hugging Face directory (no livetopic.json): labels and problem type from config.json."""
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RepositoryError(f"{model_dir}: neither a model repository nor a model directory ({exc})") from exc
    id2label = config.get("id2label") or {str(i): f"LABEL_{i}" for i in range(int(config.get("num_labels", 2)))}
    labels = [id2label[k] for k in sorted(id2label, key=int)]
    multi = config.get("problem_type") == "multi_label_classification"
    return Manifest(name=model_dir.name, version=0, labels=labels,
                    problem_type="multi_label_classification" if multi else "single_label_classification")


_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")


def _check_files(model_dir: Path) -> None:
    """Refuse incomplete directories before transformers improvises (it can build an empty tokenizer)."""
    if not (model_dir / "config.json").is_file():
        raise ModelError(f"{model_dir}: config.json missing")
    if not any(model_dir.glob("*.safetensors")):
        found = "only pickle weights (*.bin)" if any(model_dir.glob("*.bin")) else "no weights"
        raise ModelError(f"{model_dir}: {found}; livetopic loads safetensors only")
    if not any((model_dir / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelError(f"{model_dir}: tokenizer files missing (expected one of {', '.join(_TOKENIZER_FILES)})")


class LoadedModel:
    """A loaded version: tokenizer, network, labels and thresholds."""

    def __init__(self, model_dir: Path, manifest: Manifest, version: int, *, device: str = "auto",
                 dtype: str = "auto", compile: bool = False) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.path = model_dir
        self.manifest = manifest
        self.version = version
        self.name = manifest.name
        self.tag = f"{manifest.name}:{version}"
        self.labels = list(manifest.labels)
        self.multi_label = manifest.problem_type == "multi_label_classification"
        self.thresholds = np.array([manifest.threshold(label) for label in self.labels], dtype=np.float32)
        self.max_length = manifest.max_length
        self.preprocess = manifest.preprocessing.build()
        self.device, self.dtype_name = resolve_device(device, dtype, manifest.dtype_agreement)
        self.quantized = self.dtype_name == "int8"
        self._torch_dtype = torch.float32 if self.quantized else getattr(torch, self.dtype_name)
        _check_files(model_dir)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True, trust_remote_code=False)
            kwargs: dict[str, Any] = {"local_files_only": True, "use_safetensors": True,
                                      "trust_remote_code": False, "dtype": self._torch_dtype}
            # SDPA's fused kernels pay off on GPUs; on CPU, for chat-length sequences (~10-20 tokens), the
            # flash-attention kernel is about twice as slow as plain matmul + softmax ("eager").
            attention = "sdpa" if self.device == "cuda" else "eager"
            try:
                network = AutoModelForSequenceClassification.from_pretrained(
                    str(model_dir), attn_implementation=attention, **kwargs)
            except (ValueError, ImportError):
                network = AutoModelForSequenceClassification.from_pretrained(str(model_dir), **kwargs)
        except ModelError:
            raise
        except Exception as exc:  # transformers raises many kinds; all mean "cannot load"
            raise ModelError(f"{model_dir}: cannot load model: {type(exc).__name__}: {exc}") from exc
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError(f"{model_dir}: a fast (tokenizers) tokenizer is required")
        num_labels = int(network.config.num_labels)
        if num_labels != len(self.labels):
            raise ModelError(f"{model_dir}: label mismatch: model has {num_labels} outputs, "
                             f"manifest names {len(self.labels)} labels {self.labels}")
        named = [str(network.config.id2label.get(i, "")) for i in range(num_labels)]
        if not all(n.startswith("LABEL_") for n in named) and named != self.labels:
            raise ModelError(f"{model_dir}: label mismatch: config.json names {named}, manifest {self.labels}")
        self._backend = tokenizer.backend_tokenizer
        self._backend.no_padding()
        self._backend.enable_truncation(self.max_length)
        self.pad_id = int(tokenizer.pad_token_id or 0)
        network.eval()
        network.to(self.device)
        if self.quantized:
            quantize_linear_layers(network.base_model)
        self.network = network
        self._forward = torch.compile(network, dynamic=True) if compile else network
        # On CPU, BERT classifiers run through a lean forward of the same weights (worker.fastbert): measured
        # on the bert-base shape in int8, a quarter less time for one comment, a tenth for five.
        self.fast_path: FastBert | None = None
        self.fast_path_reason = "CUDA: transformers with SDPA" if self.device == "cuda" else (
            "torch.compile asked for" if compile else fast_path_reason(network))
        if self.fast_path_reason is None:
            self.fast_path = FastBert(network)
        self._pin = self.device == "cuda"
        # What one more forward pass costs, in tokens' worth of compute (see plan_chunks): on CPU a few
        # milliseconds of Python and small-matrix inefficiency; on a GPU kernel launches dominate.
        self.chunk_overhead_tokens = 2048 if self.device == "cuda" else 32

    # --- tokenizer thread -------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Preprocess and tokenise (truncated to ``max_length``, special tokens added)."""
        encodings = self._backend.encode_batch([self.preprocess(t) for t in texts], add_special_tokens=True)
        return [e.ids for e in encodings]

    def prepare(self, ids: Sequence[Sequence[int]], max_tokens: int) -> Prepared:
        """Length-sorted, padded tensors for ``ids`` (pinned when the device is CUDA)."""
        import torch

        lengths = [len(x) for x in ids]
        prepared = Prepared(size=len(ids), tokens=sum(lengths))
        all_lengths = np.asarray(lengths, dtype=np.int64)
        for rows in plan_chunks(lengths, max_tokens, self.chunk_overhead_tokens):
            chunk_lengths = all_lengths[rows]
            width = int(chunk_lengths.max())
            # Row-major order of the mask's True cells is the order of the concatenated rows.
            mask = np.arange(width)[None, :] < chunk_lengths[:, None]
            array = np.full((len(rows), width), self.pad_id, dtype=np.int64)
            array[mask] = np.fromiter(itertools.chain.from_iterable(ids[i] for i in rows), dtype=np.int64,
                                      count=int(chunk_lengths.sum()))
            input_ids, attention = torch.from_numpy(array), torch.from_numpy(mask.astype(np.int64))
            if self._pin:
                input_ids, attention = input_ids.pin_memory(), attention.pin_memory()
            prepared.chunks.append(Chunk(rows, input_ids, attention))
            prepared.padded_tokens += array.size
        return prepared

    # --- model thread -----------------------------------------------------------------------------
    def run(self, prepared: Prepared) -> np.ndarray:
        """Probabilities ``[size, labels]`` (float32) in the original row order."""
        import torch

        out = np.empty((prepared.size, len(self.labels)), dtype=np.float32)
        results = []
        with torch.inference_mode():
            for chunk in prepared.chunks:
                # Pinned host tensors + non_blocking: the copy overlaps the previous chunk's kernels.
                input_ids = chunk.input_ids.to(self.device, non_blocking=True)
                attention_mask = chunk.attention_mask.to(self.device, non_blocking=True)
                if self.fast_path is not None:
                    logits = self.fast_path(input_ids, attention_mask).float()
                else:
                    logits = self._forward(input_ids=input_ids, attention_mask=attention_mask).logits.float()
                results.append(torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1))
            if results:
                # One device→host copy (and one synchronisation) per batch, not per chunk.
                probs = torch.cat(results).cpu().numpy()
                rows = np.fromiter(itertools.chain.from_iterable(c.rows for c in prepared.chunks), dtype=np.int64,
                                   count=prepared.size)
                out[rows] = probs
        return out

    # --- anywhere ---------------------------------------------------------------------------------
    def decide(self, probs: np.ndarray) -> list[list[str]]:
        """Label names per row: over threshold (multi-label, in model order) or the top one."""
        if self.multi_label:
            hits = probs >= self.thresholds
            return [[self.labels[j] for j in np.flatnonzero(row)] for row in hits]
        return [[self.labels[int(j)]] for j in probs.argmax(axis=1)]

    def predict_texts(self, texts: Sequence[str], batch_size: int = 64, max_tokens: int = 8192) -> np.ndarray:
        """Probabilities for ``texts`` (convenience for evaluation and smoke tests)."""
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            part = texts[start : start + batch_size]
            out[start : start + len(part)] = self.run(self.prepare(self.encode(part), max_tokens))
        return out

    def smoke_test(self) -> None:
        """Raise :class:`ModelError` unless a small batch gives finite probabilities of the right shape."""
        texts = ["加油！", "好球 nice block", "轉播卡住了", "😂😂😂", "x" * (self.max_length * 3)]
        try:
            probs = self.predict_texts(texts)
        except Exception as exc:
            raise ModelError(f"{self.path}: smoke batch failed: {type(exc).__name__}: {exc}") from exc
        if probs.shape != (len(texts), len(self.labels)) or not np.isfinite(probs).all():
            raise ModelError(f"{self.path}: smoke batch gave non-finite or misshapen scores")


def locate_model(path: Path | str, version: int | None = None) -> tuple[Path, Manifest, int]:
    """(directory, manifest, version number) of ``REPO`` (highest complete version, or ``version``), ``REPO/N``,
    or a plain HF directory (number 0, its manifest made up from config.json)."""
    path = Path(path)
    if (path / "config.json").is_file() and not (path / MANIFEST_NAME).is_file():
        return path, _manifest_from_config(path), 0
    vdir, number = resolve_version(path, version)
    return vdir, read_manifest(vdir), number


def load_model(path: Path | str, version: int | None = None, *, device: str = "auto", dtype: str = "auto",
               compile: bool = False, smoke_test: bool = True) -> LoadedModel:
    """Load ``REPO`` (highest complete version, or ``version``), ``REPO/N``, or a plain HF directory."""
    vdir, manifest, number = locate_model(path, version)
    model = LoadedModel(vdir, manifest, number, device=device, dtype=dtype, compile=compile)
    if smoke_test:
        model.smoke_test()
    log.info("loaded model %s from %s on %s/%s (%s)", model.tag, vdir, model.device, model.dtype_name,
             "lean BERT forward" if model.fast_path else f"transformers forward: {model.fast_path_reason}")
    return model
