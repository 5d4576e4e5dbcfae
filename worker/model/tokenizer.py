"""Text to token ids, the one way: a version's preprocessing, then its fast tokenizer with no padding,
truncation to ``max_length`` and special tokens. The worker, the trainer and the bench all encode so, so
train-time and serve-time ids are equal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ModelError

__all__ = ["encode_texts", "load_tokenizer", "serving_backend"]


def load_tokenizer(model_dir: Path) -> Any:
    """The fast (``tokenizers``) tokenizer of a local model directory; never remote code, never a hub."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # transformers raises many kinds; all mean "cannot load"
        raise ModelError(f"{model_dir}: cannot load the tokenizer: {type(exc).__name__}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{model_dir}: a fast (tokenizers) tokenizer is required")
    return tokenizer


def serving_backend(tokenizer: Any, max_length: int) -> Any:
    """A copy of ``tokenizer``'s backend (``tokenizers.Tokenizer``): no padding, truncation to ``max_length``."""
    from tokenizers import Tokenizer

    if not getattr(tokenizer, "is_fast", False):
        raise ModelError("a fast (tokenizers) tokenizer is required")
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.enable_truncation(max_length)
    return backend


def encode_texts(backend: Any, preprocess: Callable[[str], str], texts: Sequence[str]) -> list[list[int]]:
    """Preprocess and tokenise (truncated, special tokens added). ``encode_batch_fast`` (tokenizers ≥ 0.21) skips
    the character offsets, which nothing here uses: a quarter less time per comment."""
    encode = getattr(backend, "encode_batch_fast", None) or backend.encode_batch
    encodings = encode([preprocess(t) for t in texts], add_special_tokens=True)
    return [e.ids for e in encodings]
