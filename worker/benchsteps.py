"""The in-process steps of ``livetopic bench``: the texts, the model under test (``--model``, or a cached
``--preset`` build), the baseline (the model card's usage code, one comment at a time) and the label
agreement of a dtype with float32."""

from __future__ import annotations

import gc
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import LivetopicError
from .repository import MANIFEST_NAME, Manifest, latest_version, read_manifest, resolve_version

__all__ = ["LABELS", "ModelRef", "load_texts", "prepare_model", "run_agreement", "run_baseline", "say",
           "token_lengths"]

LABELS = ["Cheer", "Game", "Broadcast", "Chat"]


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class ModelRef:
    repo: Path  # what the worker gets as --model-repo
    version: int | None  # --model-version (None: a plain Hugging Face directory)
    path: Path  # the directory with the weights
    untrained: bool


# --- inputs ---------------------------------------------------------------------------------------
def load_texts(paths: list[Path], max_chars: int) -> list[str]:
    from .producer import read_records

    texts = [r.fields["text"] for r in read_records(paths)]
    texts = [t for t in texts if t.strip() and len(t) <= max_chars and "\x00" not in t]
    if not texts:
        raise LivetopicError(f"no usable comments in {', '.join(map(str, paths))}")
    return texts


def draw(pool: list[str], start: int, n: int) -> list[str]:
    """``n`` texts from ``pool`` starting at ``start``, wrapping around when the pool is smaller."""
    return [pool[(start + i) % len(pool)] for i in range(n)]


def _fingerprint(paths: list[Path], preset: str) -> str:
    from .producer import expand_paths

    digest = hashlib.sha256(f"{preset}|{','.join(LABELS)}".encode())
    for path in expand_paths(paths):
        stat = path.stat()
        digest.update(f"|{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def _vocab_size(model_dir: Path) -> int:
    data = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    return len(data["model"]["vocab"])


def _ensure_char_vocab(model_dir: Path, texts: list[str], vocab_size: int | None) -> None:
    """Guard for :func:`worker.modelinit.build_char_tokenizer` under transformers 5, where
    ``BertTokenizerFast(vocab_file=...)`` is ignored and only the special tokens get saved (every character
    would be [UNK]). Rewrites the tokenizer with the same characters passed as ``vocab=``."""
    import collections

    from transformers import BertTokenizerFast  # type: ignore[attr-defined]

    from .modelinit import SPECIAL_TOKENS

    if _vocab_size(model_dir) > len(SPECIAL_TOKENS):
        return
    preprocess = read_manifest(model_dir).preprocessing.build()
    counts: collections.Counter[str] = collections.Counter()
    for text in texts:
        counts.update(preprocess(text).lower())
    vocab, limit = list(SPECIAL_TOKENS), vocab_size or 10**9
    seen = set(vocab)
    for ch in (c for c, _ in counts.most_common() if not c.isspace()):
        for token in (ch, "##" + ch):
            if token not in seen and len(vocab) < limit:
                vocab.append(token)
                seen.add(token)
    while vocab_size and len(vocab) < vocab_size:
        vocab.append(f"[unused{len(vocab)}]")
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True,
                                  tokenize_chinese_chars=True)
    tokenizer.save_pretrained(str(model_dir))


def prepare_model(model: Path | None, preset: str | None, text_paths: list[Path], cache_dir: Path,
                  texts: list[str]) -> ModelRef:
    """``--model`` as given, or the ``--preset`` model built once into the cache directory."""
    if model is not None:
        path = Path(model)
        if (path / "config.json").is_file() and not (path / MANIFEST_NAME).is_file():
            return ModelRef(path, None, path, untrained=False)
        vdir, number = resolve_version(path)
        untrained = bool(read_manifest(vdir).training_args.get("untrained"))
        return ModelRef(vdir.parent, number, vdir, untrained)
    from .modelinit import PRESETS, init_version

    assert preset is not None
    repo = Path(cache_dir) / "models" / f"{preset}-{_fingerprint(text_paths, preset)}"
    version = latest_version(repo)
    if version is None:
        say(f"building an untrained {preset} model in {repo} (once; vocabulary from the texts)")
        version = init_version(repo, preset=preset, labels=LABELS, texts=texts, name=f"bench-{preset}")
    vdir = repo / str(version)
    shape = PRESETS[preset]
    _ensure_char_vocab(vdir, texts, shape["vocab"] if isinstance(shape, dict) else shape.vocab)
    return ModelRef(repo, version, vdir, untrained=True)


def _manifest(ref: ModelRef) -> Manifest:
    from .model import _manifest_from_config

    return read_manifest(ref.path) if (ref.path / MANIFEST_NAME).is_file() else _manifest_from_config(ref.path)


def token_lengths(ref: ModelRef, texts: list[str]) -> list[int]:
    """Token counts as the worker encodes them (manifest preprocessing, truncation to max_length)."""
    from transformers import AutoTokenizer

    manifest = _manifest(ref)
    backend = AutoTokenizer.from_pretrained(str(ref.path), local_files_only=True).backend_tokenizer
    backend.no_padding()
    backend.enable_truncation(manifest.max_length)
    preprocess = manifest.preprocessing.build()
    return [len(e.ids) for e in backend.encode_batch([preprocess(t) for t in texts], add_special_tokens=True)]


# --- in-process steps -----------------------------------------------------------------------------
def run_baseline(ref: ModelRef, texts: list[str], device: str) -> tuple[float, list[list[str]]]:
    """The model card's usage code, one comment at a time, float32. Returns (comments/s, labels per text)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    manifest = _manifest(ref)
    names, multi = manifest.labels, manifest.problem_type == "multi_label_classification"
    thresholds = np.array([manifest.threshold(label) for label in names], dtype=np.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(ref.path), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(ref.path), local_files_only=True,
                                                               dtype=torch.float32).to(device).eval()
    labels: list[list[str]] = []

    def classify(text: str) -> np.ndarray:
        inputs = tokenizer(text, return_tensors="pt", padding=True, truncation=True, max_length=512).to(device)
        with torch.no_grad():
            return torch.sigmoid(model(**inputs).logits)[0].cpu().numpy()

    for text in texts[:3]:  # warm-up, not timed
        classify(text)
    started = time.perf_counter()
    probs = [classify(text) for text in texts]
    elapsed = time.perf_counter() - started
    for p in probs:
        labels.append([names[j] for j in np.flatnonzero(p >= thresholds)] if multi else [names[int(p.argmax())]])
    return len(texts) / elapsed, labels


def run_agreement(ref: ModelRef, texts: list[str], device: str, dtypes: list[str], batch_size: int,
                  max_tokens: int) -> dict[str, dict[str, float]]:
    """Label agreement of each dtype in ``dtypes`` with float32 on ``texts``, and each one's in-process
    (model-only: encode, prepare, run) throughput."""
    from .model import load_model

    source = ref.repo if ref.version is None else ref.path
    probs: dict[str, np.ndarray] = {}
    rates: dict[str, float] = {}
    thresholds = None
    for dtype in ["float32", *[d for d in dtypes if d != "float32"]]:
        model = load_model(source, device=device, dtype=dtype, smoke_test=False)
        model.predict_texts(texts[: min(len(texts), batch_size)], batch_size, max_tokens)  # warm-up
        started = time.perf_counter()
        probs[dtype] = model.predict_texts(texts, batch_size, max_tokens)
        rates[dtype] = len(texts) / (time.perf_counter() - started)
        thresholds, multi = model.thresholds, model.multi_label
        del model
        gc.collect()
    assert thresholds is not None
    ref_probs = probs["float32"]

    def decide(p: np.ndarray) -> np.ndarray:
        return p >= thresholds if multi else np.eye(p.shape[1], dtype=bool)[p.argmax(axis=1)]

    near = float((np.abs(ref_probs - thresholds) < 0.01).any(axis=1).mean()) if multi else float("nan")
    out = {}
    for dtype, p in probs.items():
        out[dtype] = {"label_agreement": float((decide(p) == decide(ref_probs)).all(axis=1).mean()),
                      "prob_max_abs_diff": float(np.abs(p - ref_probs).max()),
                      "comments_per_s": rates[dtype], "near_threshold_fraction": near}
    return out
