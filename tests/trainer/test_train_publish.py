"""trainer end to end on a small made-up sample: train → publish → load_model → evaluate."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import trainer.train as train_module
from trainer import commands
from trainer.train import train_model
from worker.cli import build_parser
from worker.model.load import load_model
from worker.model.repository import list_versions, read_manifest
from worker.options import options_from_args

from ..cli.helpers import run_command

LABELS = ["Cheer", "Game", "Broadcast", "Chat"]
# Made-up phrases, one pool per label; a comment mixes 1-2 pools plus filler.
POOLS = {
    "Cheer": ["衝呀衝呀", "好樣的", "再來一分", "Go go go", "🔥🔥"],
    "Game": ["那記扣殺", "換發球了", "攔網漂亮", "三號選手", "教練叫暫停"],
    "Broadcast": ["畫面停格", "聲音好小", "畫質模糊", "主播好讚", "lag 了"],
    "Chat": ["晚餐吃啥", "今天好冷", "哈哈哈", "週末去哪", "午安大家"],
}
FILLER = ["啊", "呢", "！", "吧", "～", "😂"]


def _comment(rng: random.Random) -> tuple[str, dict[str, int]]:
    chosen = rng.sample(LABELS, rng.choice([1, 1, 2]))
    parts = [rng.choice(POOLS[label]) for label in chosen] + [rng.choice(FILLER)]
    rng.shuffle(parts)
    return " ".join(parts), {label: int(label in chosen) for label in LABELS}


def write_sample(root: Path, games: int = 4, per_game: int = 60, seed: int = 1) -> Path:
    """JSONL files, one per game, with a text column and 0/1 label columns."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for g in range(games):
        with open(root / f"game{g:02d}.jsonl", "w", encoding="utf-8") as fh:
            for i in range(per_game):
                text, labels = _comment(rng)
                fh.write(json.dumps({"text": text, "user": f"viewer{i % 7}", **labels}, ensure_ascii=False) + "\n")
    return root


def _evaluate_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    capsys.readouterr()
    assert run_command("evaluate", *argv, "--json") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # one JSON object
    result: dict[str, Any] = json.loads(out[0])
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny training run shared by the tests below; records the ids the trainer fed."""
    root = tmp_path_factory.mktemp("train")
    data = write_sample(root / "data")
    fed: list[tuple[list[str], list[list[int]]]] = []
    original = train_module.encode_texts

    def spy(backend: Any, preprocess: Any, texts: Any) -> list[list[int]]:
        ids = original(backend, preprocess, texts)
        fed.append((list(texts), ids))
        return ids

    train_module.encode_texts = spy  # type: ignore[assignment]
    try:
        version = train_model(
            [data],
            root / "repo",
            labels=LABELS,
            preset="tiny",
            epochs=2,
            max_minutes=2,
            preprocess="demojize",
            lr=3e-3,
            batch_size=16,
            val_fraction=0.25,
            seed=3,
            threads=1,
            quiet=True,
            run_dir=str(root / "run"),
        )
    finally:
        train_module.encode_texts = original  # type: ignore[assignment]
    return {"root": root, "data": data, "repo": root / "repo", "version": version, "fed": fed}


def test_publishes_a_loadable_version(trained: dict[str, Any]) -> None:
    repo, version = trained["repo"], trained["version"]
    assert version == 1 and list_versions(repo) == [1]
    assert list((repo / "1").glob("*.safetensors")) and not list((repo / "1").glob("*.bin"))
    model = load_model(repo, device="cpu")
    assert model.version == 1 and model.labels == LABELS and model.multi_label
    manifest = read_manifest(repo / "1")
    assert set(manifest.thresholds) == set(LABELS)
    assert all(0.0 < t < 1.0 for t in manifest.thresholds.values())
    assert manifest.preprocessing.mode == "demojize"
    assert manifest.max_length == 64
    assert len(manifest.data_fingerprint or "") == 64
    validation = manifest.metrics["validation"]
    for key in ("micro_f1", "macro_f1", "exact_match", "per_label", "n"):
        assert key in validation
    assert set(validation["per_label"]) == set(LABELS)
    args = manifest.training_args
    assert args["preset"] == "tiny" and args["seed"] == 3 and len(args["val_games"]) == 1
    assert args["val_games"][0] not in args["train_games"]
    probs = model.predict_texts(["衝呀衝呀 好樣的", "畫面停格"])
    assert probs.shape == (2, 4) and np.isfinite(probs).all()


def test_manifest_records_int8_agreement_on_validation_comments(trained: dict[str, Any]) -> None:
    repo = trained["repo"]
    recorded = read_manifest(repo / "1").dtype_agreement
    assert "onnxruntime:int8" in recorded
    # the graphs made at publish time are published with the version (the agreement's int8 export reused)
    assert {"onnx/model-int8.onnx", "onnx/model-float32.onnx"} <= set(read_manifest(repo / "1").files)
    assert not (repo / "1" / ".onnx").exists()
    val_texts = trained["fed"][1][0]  # the trainer encodes the training rows, then the validation rows
    reference = load_model(repo, device="cpu", dtype="float32", backend="torch", smoke_test=False)
    int8 = load_model(repo, device="cpu", dtype="int8", backend="onnxruntime", smoke_test=False)
    # batches of 256, as the trainer measures (int8 activations are quantised per batch)
    same = (reference.predict_texts(val_texts, 256) >= reference.thresholds) == (
        int8.predict_texts(val_texts, 256) >= int8.thresholds
    )
    assert recorded["onnxruntime:int8"] == pytest.approx(float(same.all(axis=1).mean()), abs=1e-4)


def test_run_directory(trained: dict[str, Any]) -> None:
    run = trained["root"] / "run"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    epochs = [r for r in records if r["type"] == "epoch"]
    assert epochs and all("micro_f1" in r and "val_loss" in r for r in epochs)
    assert records[-1]["type"] == "published" and records[-1]["version"] == 1
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_time_ids_equal_serve_time_ids(trained: dict[str, Any]) -> None:
    """The trainer applies worker.text and the tokenizer exactly as LoadedModel.encode does."""
    model = load_model(trained["repo"], device="cpu", smoke_test=False)
    assert model.preprocess.mode == "demojize"
    checked = 0
    for texts, ids in trained["fed"]:
        assert model.encode(texts) == ids
        checked += len(texts)
    assert checked >= 240
    # and on text that exercises each step: emoji, case, whitespace, truncation
    from transformers import AutoTokenizer

    from worker.model.tokenizer import encode_texts, serving_backend

    tricky = ["  Go   GO 🔥\t再來一分 ", "ＡＢＣ abc", "😂" * 200, ""]
    tokenizer = AutoTokenizer.from_pretrained(str(trained["repo"] / "1"))
    assert encode_texts(serving_backend(tokenizer, 64), model.preprocess, tricky) == model.encode(tricky)


def test_evaluate_json(trained: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    result = _evaluate_json(capsys, "--model", str(trained["repo"]), "--data", str(trained["data"]))
    for key in ("micro_f1", "macro_f1", "exact_match", "per_label", "n"):
        assert key in result
    # by default the games the version never saw: its one test game (train and evaluate share the fractions)
    assert result["split"] == "test" and result["n"] == 60 and result["games"] == 1
    assert set(result["per_label"]) == set(LABELS)
    assert result["version"] == 1
    val = _evaluate_json(
        capsys,
        "--model",
        str(trained["repo"] / "1"),
        "--data",
        str(trained["data"]),
        "--split",
        "val",
        "--dtype",
        "float32",
    )
    assert val["dtype"] == "float32"
    assert val["n"] == 60 and val["games"] == 1
    manifest = read_manifest(trained["repo"] / "1")
    assert val["micro_f1"] == pytest.approx(manifest.metrics["validation"]["micro_f1"], abs=1e-6)


def test_baseline_and_labeller_evaluate(
    trained: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = str(trained["data"])
    baseline = _evaluate_json(capsys, "--baseline", "tfidf", "--data", data)
    assert baseline["source"] == "baseline" and baseline["split"] == "test" and baseline["n"] == 60
    assert baseline["micro_f1"] > 0.5
    lexicon = tmp_path / "lexicon"
    lexicon.mkdir()
    (lexicon / "keywords.json").write_text(
        json.dumps(
            {
                "cheer_words": ["衝呀", "好樣的"],
                "stream_words": ["畫面", "聲音"],
                "tactic_words": ["扣殺", "攔網"],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    labelled = _evaluate_json(capsys, "--labeller", str(lexicon), "--data", data)
    assert labelled["source"] == "labeller" and labelled["n"] == 240
    assert set(labelled["per_label"]) == set(LABELS)


def test_fine_tune_from_an_earlier_version(trained: dict[str, Any], tmp_path: Path) -> None:
    """--base REPO/N: the version's tokenizer and preprocessing carry over; a new label set gets a new head."""
    repo = tmp_path / "repo2"
    version = train_model(
        [trained["data"]],
        repo,
        labels=["Chat", "Cheer"],
        base=str(trained["repo"] / "1"),
        epochs=1,
        lr=1e-3,
        batch_size=32,
        val_fraction=0.25,
        threads=1,
        quiet=True,
        run_dir=str(tmp_path / "run"),
    )
    manifest = read_manifest(repo / str(version))
    assert manifest.labels == ["Chat", "Cheer"] and manifest.preprocessing.mode == "demojize"
    assert manifest.training_args["base"] == str(trained["repo"] / "1")
    model = load_model(repo, device="cpu")
    assert model.labels == ["Chat", "Cheer"]
    base = load_model(trained["repo"], device="cpu", smoke_test=False)
    assert model.encode(["Go go 🔥"]) == base.encode(["Go go 🔥"])  # same vocabulary


def test_cli_registers_the_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(["evaluate", "--model", "m", "--data", "d", "--json", "--labels", "a,b", "c"])
    evaluate = options_from_args(args, args.func.options)
    assert args.func.run is commands.cmd_evaluate and evaluate.as_json and evaluate.labels == ["a", "b", "c"]
    args = parser.parse_args(
        [
            "train",
            "--data",
            "d",
            "--out",
            "r",
            "--epochs",
            "3",
            "--max-minutes",
            "1.5",
            "--lowercase",
            "--no-ngrams",
            "--val-games",
            "g1,g2",
        ]
    )
    train = options_from_args(args, args.func.options)
    assert args.func.run is commands.cmd_train and (train.epochs, train.max_minutes) == (3, 1.5)
    assert train.lowercase and not train.ngrams and train.val_games == ["g1", "g2"] and train.data == [Path("d")]
    default = options_from_args(parser.parse_args(["train", "--data", "d", "--out", "r"]), args.func.options)
    assert not default.lowercase and default.ngrams  # letter case kept, the n-gram member fitted


def test_an_ngram_member_is_blended_where_it_helps_the_validation_games(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    """The member is fitted by default (a multi-label run) and kept at the encoder weight best on the validation
    games; the version serves the blend (test_evaluate_json: `evaluate --split val` = the manifest's figure);
    --no-ngrams trains the encoder alone."""
    manifest = read_manifest(trained["repo"] / "1")
    blend = manifest.metrics["ngram_blend"]
    tried = {float(w): f1 for w, f1 in blend["validation_micro_f1_by_encoder_weight"].items()}
    assert set(tried) == {0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0}
    kept = blend["encoder_weight"]
    assert tried[kept] == max(tried.values()) == pytest.approx(manifest.metrics["validation"]["micro_f1"], abs=1e-4)
    if kept < 1.0:
        assert manifest.ngrams is not None and manifest.ngrams.encoder_weight == kept
        assert "ngrams.safetensors" in manifest.files
        assert load_model(trained["repo"], device="cpu", smoke_test=False).member is not None
    else:
        assert manifest.ngrams is None and not (trained["repo"] / "1" / "ngrams.safetensors").exists()
    repo = tmp_path / "plain"
    train_model(
        [trained["data"]],
        repo,
        labels=LABELS,
        preset="tiny",
        epochs=1,
        val_fraction=0.25,
        threads=1,
        quiet=True,
        ngrams=False,
        run_dir=str(tmp_path / "run"),
        agreement_n=0,
    )
    plain = read_manifest(repo / "1")
    assert plain.ngrams is None and "ngram_blend" not in plain.metrics and plain.training_args["ngrams"] is False
