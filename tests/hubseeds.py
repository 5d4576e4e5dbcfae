"""Faithful copies of the four seed checkpoints' layouts, with small random weights made here: their file names
(weights as ``model.safetensors``, as ``pytorch_model.bin`` only, or both; the TensorFlow, Flax, Rust and ONNX
files and pickled training arguments beside them that livetopic must leave alone), their tokenizer classes (a
``tokenizer.json``, a WordPiece ``vocab.txt`` to convert, the slow-only ``BertweetTokenizer`` with its tweet
normalisation) and their configs (``id2label`` with names or ``LABEL_<i>``, ``problem_type`` or none).

- ``tvl-general-bert``: the TVL general layer, a bert-base-chinese-shaped BERT, 4 labels, multi-label.
- ``chinese-star-bert``: a Chinese 5-star sentiment BERT (``star 1`` … ``star 5``), ``pytorch_model.bin`` only.
- ``distilbert-sst2``: DistilBERT fine-tuned on SST-2 (``NEGATIVE``/``POSITIVE``), safetensors beside the pickle.
- ``bertweet-emotion-base``: RoBERTa with ``BertweetTokenizer`` (``vocab.txt`` + ``bpe.codes``, normalisation on:
  emoji through the ``emoji`` package, ``@USER``, ``HTTPURL``), 4 emotions as ``LABEL_0…3``, the pickle only.

The weights are drawn with a large spread, so the scores differ from text to text (an output that is the same
for every text would agree with any reference)."""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .conftest import SAMPLE

TVL_LABELS = ["Cheer", "Game", "Broadcast", "Chat"]
STAR_LABELS = [f"star {i}" for i in range(1, 6)]
SST2_LABELS = ["NEGATIVE", "POSITIVE"]
EMOTIONS = ["anger", "joy", "optimism", "sadness"]  # the card's names for LABEL_0…3

ENGLISH = [
    "what a match!!! 😂😂 can't believe that block",
    "@coach_lee you're killing it tonight 🔥",
    "stream keeps buffering… check http://status.example.com",
    "I'm so sad they lost, ain't fair 😢",
    "LET'S GOOO 🏐🏐🏐",
    "the referee cannot be serious",
    "best rally of the season, no doubt",
    "why is the audio out of sync again?",
    "they'll win the next set for sure",
    "ok that serve was ugly lol",
    "www.example.org has the stats",
    "we've waited all week for this ❤️",
]


def chinese_texts(n: int = 40) -> list[str]:
    """Comments from the sample chat that ships with livetopic (written for it)."""
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row["text"] for row in rows[:n]]


@dataclass(frozen=True)
class Seed:
    name: str  # the repository's name on the stand-in Hub (owner "seed")
    labels: list[str]  # as published: config.json's id2label, in order
    multi_label: bool
    texts: list[str]  # comments of the language it reads
    weights: str  # "safetensors", "bin" or "both"
    slow_tokenizer: bool = False
    ignored: tuple[str, ...] = ()  # files of the repository that livetopic must not download

    @property
    def hub_id(self) -> str:
        return f"seed/{self.name}"


SEEDS = [
    Seed("tvl-general-bert", TVL_LABELS, True, [], "safetensors", ignored=("training_args.bin", "README.md")),
    Seed("chinese-star-bert", STAR_LABELS, False, [], "bin", ignored=("tf_model.h5",)),
    Seed(
        "distilbert-sst2",
        SST2_LABELS,
        False,
        ENGLISH,
        "both",
        ignored=("pytorch_model.bin", "tf_model.h5", "rust_model.ot", "onnx/model.onnx", "map.jpeg"),
    ),
    Seed(
        "bertweet-emotion-base",
        [f"LABEL_{i}" for i in range(4)],
        False,
        ENGLISH,
        "bin",
        slow_tokenizer=True,
        ignored=("tf_model.h5", "flax_model.msgpack"),
    ),
]


def seed_texts(seed: Seed) -> list[str]:
    return seed.texts or chinese_texts()


def _wordpiece_vocab(texts: list[str], lower: bool) -> list[str]:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted({c for text in texts for c in (text.lower() if lower else text) if not c.isspace()})
    for ch in chars:
        vocab += [ch, "##" + ch]
    return vocab


def _bertweet_vocab() -> tuple[list[str], list[tuple[str, str]]]:
    """(vocab.txt tokens after the four specials, bpe.codes merges): every printable ASCII character whole and as
    a continuation (``x@@``), a few merges, and the normalised placeholders."""
    tokens: list[str] = []
    for code in range(33, 127):
        tokens += [chr(code), chr(code) + "@@"]
    merges = [("t", "h"), ("th", "e</w>"), ("i", "n"), ("e", "r"), ("a", "n"), ("o", "u")]
    tokens += ["the", "th@@", "in@@", "er@@", "an@@", "ou@@", "@USER", "HTTPURL"]
    return tokens, merges


def _config(seed: Seed, vocab_size: int) -> Any:
    from transformers import BertConfig, DistilBertConfig, RobertaConfig

    common: dict[str, Any] = {
        "id2label": dict(enumerate(seed.labels)),
        "label2id": {label: i for i, label in enumerate(seed.labels)},
        "vocab_size": vocab_size,
        "initializer_range": 0.5,
    }
    if seed.multi_label:
        common["problem_type"] = "multi_label_classification"
    # two layers of width 32, two heads, a feed-forward of 64, as BERT and RoBERTa name them
    size: dict[str, Any] = {
        "num_hidden_layers": 2,
        "hidden_size": 32,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    }
    if seed.name == "distilbert-sst2":  # the same size, as DistilBERT names it
        distil: dict[str, Any] = dict(zip(("n_layers", "dim", "n_heads", "hidden_dim"), size.values(), strict=True))
        return DistilBertConfig(
            **distil, finetuning_task="sst-2", architectures=["DistilBertForSequenceClassification"], **common
        )
    if seed.name == "bertweet-emotion-base":
        return RobertaConfig(
            **size,
            max_position_embeddings=130,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            layer_norm_eps=1e-5,
            tokenizer_class="BertweetTokenizer",
            architectures=["RobertaForSequenceClassification"],
            **common,
        )
    return BertConfig(**size, max_position_embeddings=512, architectures=["BertForSequenceClassification"], **common)


def _weights(config: Any, seed_number: int) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed_number)
    model = AutoModelForSequenceClassification.from_config(config)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.35)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def _save_weights(files: dict[str, bytes], state: dict[str, Any], how: str) -> None:
    import torch
    from safetensors.torch import save

    if how in ("safetensors", "both"):
        files["model.safetensors"] = save(state, metadata={"format": "pt"})
    if how in ("bin", "both"):
        buffer = io.BytesIO()
        torch.save(state, buffer)
        files["pytorch_model.bin"] = buffer.getvalue()


def _tokenizer_files(seed: Seed, texts: list[str]) -> tuple[dict[str, bytes], int]:
    if seed.slow_tokenizer:
        tokens, merges = _bertweet_vocab()
        return {
            "vocab.txt": "".join(f"{t} 1\n" for t in tokens).encode(),
            "bpe.codes": "".join(f"{a} {b} 1\n" for a, b in merges).encode(),
            "added_tokens.json": json.dumps({"<mask>": 4 + len(tokens)}).encode(),
            "tokenizer_config.json": json.dumps(
                {"normalization": True, "tokenizer_class": "BertweetTokenizer"}
            ).encode(),
        }, 4 + len(tokens) + 1
    lower = seed.name != "tvl-general-bert"
    vocab = _wordpiece_vocab(texts, lower)
    files = {
        "vocab.txt": "".join(t + "\n" for t in vocab).encode(),
        "special_tokens_map.json": json.dumps(
            {
                "unk_token": "[UNK]",
                "sep_token": "[SEP]",
                "pad_token": "[PAD]",
                "cls_token": "[CLS]",
                "mask_token": "[MASK]",
            }
        ).encode(),
    }
    if seed.name == "distilbert-sst2":
        files = {
            "vocab.txt": files["vocab.txt"],
            "tokenizer_config.json": json.dumps({"do_lower_case": True, "model_max_length": 512}).encode(),
        }
    elif seed.name == "chinese-star-bert":
        files["tokenizer_config.json"] = json.dumps(
            {"do_lower_case": True, "tokenizer_class": "BertTokenizer", "model_max_length": 512}
        ).encode()
    else:  # saved by a Trainer: the fast tokenizer's tokenizer.json beside the vocabulary
        files.update(_fast_tokenizer_files(vocab))
    return files, len(vocab)


def _fast_tokenizer_files(vocab: list[str]) -> dict[str, bytes]:
    import tempfile

    from transformers import BertTokenizerFast  # type: ignore[attr-defined]

    tokenizer = BertTokenizerFast(
        vocab={t: i for i, t in enumerate(vocab)},
        do_lower_case=False,
        tokenize_chinese_chars=True,
        model_max_length=512,
    )
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        return {name: (Path(tmp) / name).read_bytes() for name in ("tokenizer.json", "tokenizer_config.json")}


def _extras(seed: Seed) -> dict[str, bytes]:
    """What the published repositories hold beside the model: never downloaded."""
    out: dict[str, bytes] = {".gitattributes": b"*.bin filter=lfs diff=lfs merge=lfs -text\n"}
    for name in seed.ignored:
        if name == "training_args.bin":
            out[name] = pickle.dumps({"learning_rate": 2e-5})
        elif name == "README.md":
            out[name] = f"# {seed.name}\n\nlabels: {', '.join(seed.labels)}\n".encode()
        elif name != "pytorch_model.bin":
            out[name] = f"{name} of {seed.name}: not a format livetopic reads".encode()
    return out


def seed_files(seed: Seed, seed_number: int = 0) -> dict[str, bytes]:
    """Every file of ``seed``'s repository (relative path → bytes)."""
    files, vocab_size = _tokenizer_files(seed, seed_texts(seed))
    config = _config(seed, vocab_size)
    files["config.json"] = config.to_json_string().encode()
    _save_weights(files, _weights(config, seed_number), seed.weights)
    files.update({k: v for k, v in _extras(seed).items() if k not in files})
    return files


def write_files(files: dict[str, bytes], out: Path) -> Path:
    """A repository's files as a local directory (what ``git clone`` of it gives)."""
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    return out


def write_seed(seed: Seed, out: Path, seed_number: int = 0) -> Path:
    return write_files(seed_files(seed, seed_number), out)


def reference_scores(model_dir: Path, texts: list[str]) -> list[list[float]]:
    """The reference: transformers' text-classification pipeline on the published files, every label's score in
    the model's label order."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)  # never a hub
    classify: Callable[..., Any] = pipeline(
        "text-classification", model=model, tokenizer=tokenizer, top_k=None, device="cpu"
    )
    out = []
    for result in classify(texts):
        by_label = {r["label"]: r["score"] for r in result}
        out.append([by_label[label] for label in classify.model.config.id2label.values()])
    return out
