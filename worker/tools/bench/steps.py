"""The in-process steps of ``livetopic bench``: the texts, the model under test (``--model``, or a cached
``--preset`` build), the baseline (the model card's usage code, one comment at a time) and the label
agreement of a dtype with float32."""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import LivetopicError
from ...inputs import expand_paths, read_records
from ...model.labels import decide, label_names
from ...model.load import locate_model, stage_location
from ...model.repository import Manifest, latest_version
from ...model.tokenizer import encode_texts, load_tokenizer, serving_backend
from ...model.untrained import init_version

__all__ = ["LABELS", "NULL", "Baseline", "ModelRef", "draw", "load_texts", "prepare_model", "say", "token_lengths"]

LABELS = ["Cheer", "Game", "Broadcast", "Chat"]
NULL = "null"  # the preset of the host-path measurement: a tokenizer and labels, fixed scores instead of a network


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class ModelRef:
    repo: Path  # what the worker gets as --model-repo
    version: int | None  # --model-version (None: a plain Hugging Face directory)
    path: Path  # the directory with the weights
    manifest: Manifest  # made up from config.json for a plain Hugging Face directory
    untrained: bool
    # a pipeline version (``path`` and ``manifest`` are then its first stage's) or a multi-task one (its heads)
    pipeline: Path | None = None


# --- inputs ---------------------------------------------------------------------------------------
def load_texts(paths: list[Path], max_chars: int) -> list[str]:
    texts = [r.fields["text"] for r in read_records(paths)]
    texts = [t for t in texts if t.strip() and len(t) <= max_chars and "\x00" not in t]
    if not texts:
        raise LivetopicError(f"no usable comments in {', '.join(map(str, paths))}")
    return texts


def draw(pool: list[str], start: int, n: int) -> list[str]:
    """``n`` texts from ``pool`` starting at ``start``, wrapping around when the pool is smaller."""
    return [pool[(start + i) % len(pool)] for i in range(n)]


def _fingerprint(paths: list[Path], preset: str) -> str:
    digest = hashlib.sha256(f"{preset}|{','.join(LABELS)}|published engines 3".encode())
    for item in expand_paths(paths, suffixes=None):
        stat = item.path.stat()
        digest.update(f"|{item.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def prepare_model(
    model: Path | None, preset: str | None, text_paths: list[Path], cache_dir: Path, texts: list[str]
) -> ModelRef:
    """``--model`` as given, or the ``--preset`` model built once into the cache directory."""
    if model is not None:
        vdir, manifest, number = locate_model(model)
        if number == 0:  # a plain Hugging Face directory
            return ModelRef(vdir, None, vdir, manifest, untrained=False)
        if manifest.pipeline:  # the baseline, the agreement and the ceiling take its first stage
            first, first_manifest, _ = stage_location(vdir, manifest.pipeline[0])
            untrained = bool(first_manifest.training_args.get("untrained"))
            return ModelRef(vdir.parent, number, first, first_manifest, untrained, pipeline=vdir)
        untrained = bool(manifest.training_args.get("untrained"))
        heads = vdir if manifest.heads else None  # a multi-task version: its heads cost the one run
        return ModelRef(vdir.parent, number, vdir, manifest, untrained, pipeline=heads)
    assert preset is not None
    repo = Path(cache_dir) / "models" / f"{preset}-{_fingerprint(text_paths, preset)}"
    version = latest_version(repo)
    if version is None:
        say(
            f"building an untrained {preset} model in {repo} (once; vocabulary from the texts)"
            + (": its tokenizer and labels only, the null backend stands in for its network" if preset == NULL else "")
        )
        version = init_version(
            repo,
            preset="tiny" if preset == NULL else preset,
            labels=LABELS,
            texts=texts,
            name=f"bench-{preset}",
            graphs=preset != NULL,
        )
    vdir, manifest, number = locate_model(repo, version)
    return ModelRef(repo, number, vdir, manifest, untrained=True)


def token_lengths(ref: ModelRef, texts: list[str]) -> list[int]:
    """Token counts as the worker encodes them (manifest preprocessing, truncation to max_length)."""
    backend = serving_backend(load_tokenizer(ref.path), ref.manifest.max_length)
    return [len(ids) for ids in encode_texts(backend, ref.manifest.preprocessing.build(), texts)]


# --- in-process steps -----------------------------------------------------------------------------
class Baseline:
    """The model card's usage code, one comment at a time, float32: ``tokenizer(text, return_tensors="pt",
    padding=True, truncation=True, max_length=512)`` (fewer where the model takes fewer positions), the model,
    ``torch.sigmoid``, under ``torch.no_grad()``."""

    def __init__(self, ref: ModelRef, device: str) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        manifest = ref.manifest
        self.names, self.multi = manifest.labels, manifest.problem_type == "multi_label_classification"
        self.thresholds = np.array([manifest.threshold(label) for label in self.names], dtype=np.float32)
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(str(ref.path), local_files_only=True)
        self.model = (
            AutoModelForSequenceClassification.from_pretrained(
                str(ref.path), local_files_only=True, dtype=torch.float32
            )
            .to(device)
            .eval()
        )
        # the card's 512, or fewer where the model takes fewer positions (a small preset: 128)
        self.max_length = min(512, int(getattr(self.model.config, "max_position_embeddings", 512)))
        self.seconds, self.count = 0.0, 0
        self.labels: list[list[str]] = []

    def classify(self, text: str) -> np.ndarray:
        import torch

        inputs = self.tokenizer(text, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
        with torch.no_grad():
            probs = torch.sigmoid(self.model(**inputs.to(self.device)).logits)
        return probs[0].cpu().numpy()

    def run(self, texts: list[str]) -> None:
        """Time ``texts`` (after a 3-comment warm-up) and add them to the totals."""
        for text in texts[:3]:
            self.classify(text)
        started = time.perf_counter()
        probs = [self.classify(text) for text in texts]
        self.seconds += time.perf_counter() - started
        self.count += len(texts)
        if probs:
            self.labels += label_names(decide(np.stack(probs), self.thresholds, self.multi), self.names)

    @property
    def comments_per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")
