"""The network to train: a local base model (``--base``) or a small BERT from scratch, and batched
inference for validation."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.errors import ConfigError, ModelError
from worker.model.precision import resolve_engine
from worker.model.presets import PRESETS, build_config
from worker.model.repository import MANIFEST_NAME, PreprocessingSpec, read_manifest, resolve_version
from worker.model.tokenizer import load_tokenizer
from worker.model.untrained import build_char_tokenizer

from .config import TrainConfig
from .encoding import collate, length_batches

__all__ = ["Built", "autocast", "build_model", "predict_probs", "resolve_base"]

log = logging.getLogger(__name__)


@dataclass
class Built:
    model: Any
    tokenizer: Any
    preprocessing: PreprocessingSpec
    device: str
    autocast_dtype: Any  # torch.dtype on CUDA, None on CPU

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)


def resolve_base(base: str | Path) -> tuple[Path, PreprocessingSpec | None, list[str] | None]:
    """A base directory: a Hugging Face model directory, a version ``REPO/N`` or a repository (latest
    version). Returns (directory, its preprocessing if it is a livetopic version, its labels)."""
    path = Path(base)
    if not path.is_dir():
        raise ConfigError(f"--base {path}: no such directory")
    if (path / MANIFEST_NAME).is_file() or not (path / "config.json").is_file():
        vdir, _ = resolve_version(path)
        manifest = read_manifest(vdir)
        return vdir, manifest.preprocessing, list(manifest.labels)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}/config.json: unreadable: {exc}") from exc
    id2label = config.get("id2label") or {}
    labels = [id2label[k] for k in sorted(id2label, key=int)] if id2label else None
    return path, None, labels


def _from_base(cfg: TrainConfig, labels: list[str]) -> tuple[Any, Any, PreprocessingSpec]:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    assert cfg.base is not None
    base_dir, base_spec, base_labels = resolve_base(cfg.base)
    spec = base_spec or PreprocessingSpec()
    if cfg.preprocess is not None:
        spec = PreprocessingSpec(mode=cfg.preprocess, lowercase=cfg.lowercase)
    try:
        tokenizer = load_tokenizer(base_dir)
        config = AutoConfig.from_pretrained(str(base_dir), local_files_only=True, trust_remote_code=False)
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {k: i for i, k in enumerate(labels)}
        config.problem_type = "multi_label_classification"
        model = AutoModelForSequenceClassification.from_pretrained(
            str(base_dir), config=config, ignore_mismatched_sizes=True, local_files_only=True, trust_remote_code=False
        )
    except Exception as exc:  # transformers raises many kinds; all mean "cannot load"
        raise ModelError(f"--base {base_dir}: cannot load: {type(exc).__name__}: {exc}") from exc
    if base_labels != labels:
        head = getattr(model, "classifier", None)
        if head is not None:  # a different label set: a fresh head, not another task's weights
            for module in head.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None and positions < cfg.max_length:
        raise ConfigError(f"--max-length {cfg.max_length} exceeds the base model's {positions} positions")
    log.info(
        "base model %s (%s), %d parameters", base_dir, type(model).__name__, sum(p.numel() for p in model.parameters())
    )
    return model, tokenizer, spec


def build_model(cfg: TrainConfig, labels: list[str], texts: list[str], workdir: Path) -> Built:
    """The model to train, its tokenizer and preprocessing, on the chosen device."""
    import torch
    from transformers import AutoModelForSequenceClassification

    device, _backend, dtype_name = resolve_engine(cfg.device, "auto")
    autocast = getattr(torch, dtype_name) if device == "cuda" else None
    if cfg.base:
        model, tokenizer, spec = _from_base(cfg, labels)
    else:
        if cfg.preset not in PRESETS:
            raise ConfigError(f"unknown --preset {cfg.preset!r}; expected one of {', '.join(PRESETS)}")
        spec = PreprocessingSpec(mode=cfg.preprocess or "raw", lowercase=cfg.lowercase)
        tok_dir = workdir / "tokenizer"
        vocab = build_char_tokenizer(texts, tok_dir, vocab_size=PRESETS[cfg.preset].vocab, preprocess=spec.build())
        tokenizer = load_tokenizer(tok_dir)
        config = build_config(cfg.preset, "bert", vocab, labels, True, cfg.max_length)
        if cfg.dropout is not None:
            config.hidden_dropout_prob = config.attention_probs_dropout_prob = cfg.dropout
        torch.manual_seed(cfg.seed)
        model = AutoModelForSequenceClassification.from_config(config)
        log.info(
            "from scratch: preset %s, vocabulary %d, %d parameters",
            cfg.preset,
            vocab,
            sum(p.numel() for p in model.parameters()),
        )
    model.to(device)
    return Built(model, tokenizer, spec, device, autocast)


def autocast(dtype: Any) -> contextlib.AbstractContextManager[Any]:
    """bf16/fp16 autocast on CUDA; nothing on CPU."""
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def predict_probs(
    model: Any, ids: list[list[int]], device: str, pad_id: int, autocast_dtype: Any = None, batch_size: int = 256
) -> np.ndarray:
    """Sigmoid scores [rows, labels] for token ids, in row order."""
    import torch

    was_training = model.training
    model.eval()
    out = np.zeros((len(ids), int(model.config.num_labels)), dtype=np.float32)
    with torch.inference_mode():
        for rows in length_batches([len(x) for x in ids], batch_size):
            input_ids, mask = collate(ids, rows, pad_id)
            with autocast(autocast_dtype):
                logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
            out[rows] = torch.sigmoid(logits.float()).cpu().numpy()
    model.train(was_training)
    return out
