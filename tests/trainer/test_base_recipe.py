"""``livetopic train --base DIR`` end to end on a small pretrained-format model made here (a BertForMaskedLM and its
tokenizer, saved with save_pretrained; no network): the seed card's recipe by default (lr 1e-5, batch 32,
BCEWithLogitsLoss, 10 epochs), recorded in the manifest, the encoder starting from the base's weights, and the
published version served by a worker on a real Redis."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from trainer.config import BASE_RECIPE, SCRATCH_DEFAULTS, TrainConfig
from trainer.loop import LOG_EVERY, lr_factor
from worker.model.repository import list_versions, read_manifest
from worker.streams.producer import StreamProducer
from worker.tools.embedded import EmbeddedRedis

from ..cli.helpers import run_command
from ..inprocess import make_worker
from ..integration.helpers import entries, run_until, scores_of
from .test_train_publish import FILLER, LABELS, POOLS, write_sample

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_base(out: Path) -> dict[str, Any]:
    """A 2-layer BERT for masked language modelling over the sample's characters, its weights moved off any
    initialisation (LayerNorm included), saved as a Hugging Face directory. Returns its encoder's tensors."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast  # type: ignore[attr-defined]

    phrases = [*(p for pool in POOLS.values() for p in pool), *FILLER]
    chars = sorted({ch.lower() for phrase in phrases for ch in phrase if not ch.isspace()})
    vocab = [*SPECIAL, *chars, *(f"##{ch}" for ch in chars)]
    tokenizer = BertTokenizerFast(
        vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True, tokenize_chinese_chars=True
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(11)
    model = BertForMaskedLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return {k.removeprefix("bert."): v.clone() for k, v in model.state_dict().items() if _encoder(k)}


def _encoder(key: str) -> bool:
    return key.startswith(("bert.embeddings.", "bert.encoder.")) and "position_ids" not in key


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``livetopic train --base`` with the recipe's defaults (no --lr, --batch-size, --epochs)."""
    root = tmp_path_factory.mktemp("base")
    data = write_sample(root / "data", games=4, per_game=100)
    base = make_base(root / "base")
    argv = ["train", "--data", str(data), "--out", str(root / "repo"), "--base", str(root / "base")]
    argv += ["--labels", ",".join(LABELS), "--val-fraction", "0.25", "--threads", "1", "--quiet"]
    argv += ["--agreement-n", "50", "--run-dir", str(root / "run")]
    assert run_command(*argv) == 0
    return {"root": root, "data": data, "repo": root / "repo", "base": base}


def test_the_recipe_is_the_default_with_a_base_only() -> None:
    assert BASE_RECIPE == {"lr": 1e-5, "batch_size": 32, "epochs": 10}
    with_base = TrainConfig(base="some/dir")
    assert (with_base.lr, with_base.batch_size, with_base.epochs) == (1e-5, 32, 10)
    assert TrainConfig(base="some/dir", lr=3e-5, epochs=2).lr == 3e-5  # given values win
    scratch = TrainConfig(preset="tiny")
    assert (scratch.batch_size, scratch.epochs) == (SCRATCH_DEFAULTS["batch_size"], SCRATCH_DEFAULTS["epochs"])
    assert scratch.lr == 2e-3 and TrainConfig().lr == 5e-4  # from scratch: by preset, not the card's 1e-5


def test_manifest_records_the_recipe(fine_tuned: dict[str, Any]) -> None:
    repo = fine_tuned["repo"]
    assert list_versions(repo) == [1]
    args = read_manifest(repo / "1").training_args
    assert (args["lr"], args["batch_size"], args["epochs"]) == (1e-5, 32, 10)
    assert args["loss"] == "BCEWithLogitsLoss" and args["recipe"] == "seed card (--base)"
    assert args["base"] == str(fine_tuned["root"] / "base")


def test_the_run_used_the_recipe(fine_tuned: dict[str, Any]) -> None:
    """The run log shows the batch size (steps per epoch), the epochs and the peak learning rate at work."""
    args = read_manifest(fine_tuned["repo"] / "1").training_args
    records = [json.loads(line) for line in (fine_tuned["root"] / "run" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["type"] == "epoch"]
    per_epoch = math.ceil(args["n_train"] / 32)
    assert [r["step"] for r in epochs] == [per_epoch * r["epoch"] for r in epochs]
    assert len(epochs) == 10  # no time budget; the loss keeps falling at 1e-5, so no early stop either
    steps = [r for r in records if r["type"] == "step"]
    assert steps and steps[0]["step"] == LOG_EVERY
    expected = 1e-5 * lr_factor((LOG_EVERY - 1) / (per_epoch * 10), args["warmup"])
    assert steps[0]["lr"] == pytest.approx(expected)


def test_the_encoder_started_from_the_base(fine_tuned: dict[str, Any]) -> None:
    """Each encoder tensor moved by at most what 1e-5 × the steps can move it: the base's weights, not fresh ones."""
    import torch
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    base: dict[str, torch.Tensor] = fine_tuned["base"]
    tuned = load_file(str(fine_tuned["repo"] / "1" / "model.safetensors"))
    tuned = {k.removeprefix("bert."): v for k, v in tuned.items()}
    assert set(base) <= set(tuned)
    moved = max(float((tuned[k] - v).abs().max()) for k, v in base.items())
    assert moved < 2e-3
    fresh = BertModel(BertConfig.from_pretrained(str(fine_tuned["root"] / "base"))).state_dict()
    assert min(float((fresh[k] - v).abs().max()) for k, v in base.items()) > 2e-2  # so the check above can fail


async def test_a_worker_serves_the_fine_tuned_version(
    fine_tuned: dict[str, Any], redis_server: EmbeddedRedis, redis_client: aioredis.Redis
) -> None:
    worker = make_worker(redis_server.url, fine_tuned["repo"])
    texts = ["衝呀衝呀 好樣的", "畫面停格 聲音好小", "晚餐吃啥 😂"]
    await StreamProducer(redis_client, "livetopic:comments").add([{"text": t} for t in texts])
    await run_until(worker, redis_client, len(texts))
    results = await entries(redis_client, worker.settings.output_stream)
    assert len(results) == len(texts) and await redis_client.xlen(worker.settings.dead_letter_stream) == 0
    for result in results:
        assert result["model"] == "livetopic:1" and list(scores_of(result)) == LABELS
