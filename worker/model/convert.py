"""Pickled PyTorch weights (``pytorch_model.bin``, or its shards and index) to safetensors, once, where a model
enters the repository (``model pull``, ``model add``). They are read with ``torch.load(weights_only=True)``:
tensors and plain containers only, so a pickle that asks for anything else (a class to build, a function to
call) is refused, never run. A worker only ever reads safetensors; it never unpickles anything."""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ModelError

__all__ = ["PICKLE_INDEX", "convert_pickles", "safetensors_name"]

PICKLE_INDEX = "pytorch_model.bin.index.json"
SAFETENSORS_INDEX = "model.safetensors.index.json"


def safetensors_name(name: str) -> str:
    """``pytorch_model.bin`` → ``model.safetensors``; ``pytorch_model-00001-of-00002.bin`` →
    ``model-00001-of-00002.safetensors``."""
    stem = name.removesuffix(".bin")
    return stem.replace("pytorch_model", "model", 1) + ".safetensors"


def _load(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelError(
            f"{path.name}: refused: this pickle holds more than tensors, and livetopic never runs "
            f"what a pickle asks for ({str(exc).splitlines()[0]})"
        ) from exc
    except Exception as exc:  # truncated, not a pickle, not a zip: torch raises many kinds
        raise ModelError(f"{path.name}: cannot read these PyTorch weights: {type(exc).__name__}: {exc}") from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path.name}: not a state dict (a mapping of names to tensors)")
    return dict(state)


def _unshared(state: Mapping[str, Any]) -> dict[str, Any]:
    """Contiguous tensors, none sharing memory with another (safetensors stores each once: tied weights are
    written as copies, which is what loading them gives)."""
    seen: set[int] = set()
    out = {}
    for name, tensor in state.items():
        tensor = tensor.contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen and tensor.numel():
            tensor = tensor.clone()
        seen.add(pointer)
        out[name] = tensor
    return out


def convert_pickles(origin: Path, names: Sequence[str], out: Path) -> dict[str, str]:
    """Write each pickled weights file of ``names`` (in ``origin``) as safetensors into ``out`` (and the shards'
    index, renamed); returns {pickle name: safetensors name}."""
    from safetensors.torch import save_file

    converted: dict[str, str] = {}
    for name in names:
        if name == PICKLE_INDEX:
            continue
        target = safetensors_name(name)
        save_file(_unshared(_load(origin / name)), str(out / target), metadata={"format": "pt"})
        converted[name] = target
    if PICKLE_INDEX in names:
        try:
            index = json.loads((origin / PICKLE_INDEX).read_text(encoding="utf-8"))
            index["weight_map"] = {k: safetensors_name(v) for k, v in index["weight_map"].items()}
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise ModelError(f"{PICKLE_INDEX}: unreadable shard index: {exc}") from exc
        (out / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2), encoding="utf-8")
        converted[PICKLE_INDEX] = SAFETENSORS_INDEX
    return converted
