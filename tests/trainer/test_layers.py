"""``train --layer`` and ``evaluate`` on a pipeline, on small made-up chat exports (the 8 teacher topics, and
sentiment scores in some games only); the real exports' layer sizes where ../shared has them."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trainer.data import CHAT_TOPICS
from trainer.layers import LAYERS, load_layer
from trainer.train import train_model
from worker.model.load import load_model
from worker.model.pipeline import build_pipeline, parse_stage
from worker.model.repository import read_manifest

from ..cli.helpers import run_command

PHRASES = {
    "轉播": "畫面卡住",
    "加油": "衝呀衝呀",
    "閒聊": "晚餐吃啥",
    "球員": "三號好強",
    "教練": "教練叫暫停",
    "裁判": "裁判眼殘",
    "戰術": "快攻戰術",
    "球隊": "主隊加油",
}
SENTIMENT = {"negative": "好爛", "neutral": "嗯嗯", "positive": "好棒"}
# a small, quick training run on these exports (tiny model, single thread, no dtype agreement)
SMALL_RUN: dict[str, Any] = {
    "preset": "tiny",
    "epochs": 2,
    "max_minutes": 2,
    "lr": 3e-3,
    "batch_size": 16,
    "threads": 1,
    "quiet": True,
    "agreement_n": 0,
}


def write_exports(root: Path, games: int = 6, per_game: int = 80, seed: int = 2) -> Path:
    """Chat-export JSON files (content + the 8 topic scores); the even games carry sentiment scores too."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for g in range(games):
        rows = []
        for i in range(per_game):
            topics = rng.sample(CHAT_TOPICS, rng.choice([1, 1, 2]))
            mood = rng.choice(list(SENTIMENT))
            row: dict[str, Any] = {
                "time": f"{i // 60}:{i % 60:02d}",
                "user": f"u{i % 5}",
                "content": " ".join([*(PHRASES[t] for t in topics), SENTIMENT[mood]]),
            }
            row.update({t: float(t in topics) for t in CHAT_TOPICS})
            if g % 2 == 0:
                row.update({s: 0.9 if s == mood else 0.05 for s in SENTIMENT})
            rows.append(row)
        (root / f"G{g}.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return root


def test_each_layer_takes_its_comments(tmp_path: Path) -> None:
    data = write_exports(tmp_path / "data")
    general, game, sentiment = (load_layer([data], layer) for layer in ("general", "game", "sentiment"))
    assert general.labels == LAYERS["general"] and len(general) == 6 * 80
    assert game.labels == LAYERS["game"] and len(game) == int(general.hard[:, 1].sum())  # Game on: any game topic
    assert game.hard.any(axis=1).all()
    assert sentiment.labels == LAYERS["sentiment"] and set(sentiment.groups) == {"G0", "G2", "G4"}
    assert (sentiment.targets.sum(axis=1) == 1).all()  # one class per comment


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layers")
    data = write_exports(root / "data")
    common = SMALL_RUN
    for layer in ("general", "game", "sentiment"):  # G0 and G1 held out (sentiment: only G0 has its scores)
        train_model(
            [data],
            root / layer,
            layer=layer,
            run_dir=str(root / f"run-{layer}"),
            test_games=["G0"] if layer == "sentiment" else ["G0", "G1"],
            **common,
        )
    train_model(
        [data],
        root / "flat",
        labels=list(CHAT_TOPICS),
        name="flat",
        run_dir=str(root / "run-flat"),
        test_games=["G0", "G1"],
        **common,
    )
    build_pipeline(
        root / "cascade",
        [
            parse_stage(f"general={root / 'general'}"),
            parse_stage(f"game={root / 'game'}:when=general.Game"),
            parse_stage(f"sentiment={root / 'sentiment'}"),
        ],
        name="cascade",
    )
    return {"root": root, "data": data}


def test_layers_train_as_the_research_has_them(cascade: dict[str, Path]) -> None:
    root = cascade["root"]
    sentiment = read_manifest(root / "sentiment" / "1")
    assert (sentiment.name, sentiment.problem_type) == ("sentiment", "single_label_classification")
    assert read_manifest(root / "game" / "1").labels == LAYERS["game"]
    model = load_model(root / "cascade", device="cpu", dtype="float32", backend="torch")
    probs = model.stages[1].model.predict_texts(["好棒 三號好強"])
    assert np.isclose(probs.sum(), 1.0, atol=1e-4)  # served as one class per comment (softmax)


def test_evaluate_scores_each_stage_and_the_eight_topics(
    cascade: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = cascade["root"]
    capsys.readouterr()
    assert (
        run_command(
            "evaluate",
            "--model",
            str(root / "cascade"),
            "--flat",
            str(root / "flat"),
            "--data",
            str(cascade["data"]),
            "--dtype",
            "float32",
            "--json",
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["games"] == 2  # G0 and G1: held out by every stage and by the flat model
    assert set(result["stages"]) == {"general", "game", "sentiment"}
    assert result["stages"]["sentiment"]["n"] == 80  # G0 only has sentiment scores
    assert result["stages"]["game"]["n"] < result["stages"]["general"]["n"] == 160
    for key in ("topics_cascade", "topics_flat"):
        assert set(result[key]["per_topic_f1"]) == set(CHAT_TOPICS)
        assert 0.0 <= result[key]["micro_f1"] <= 1.0
    assert (
        run_command("evaluate", "--model", str(root / "cascade"), "--data", str(cascade["data"]), "--dtype", "float32")
        == 0
    )
    assert "8 topics, cascade: micro_f1" in capsys.readouterr().out


def test_the_real_exports_layers(tvl_chat_dir: Path) -> None:
    game = load_layer([tvl_chat_dir / "G10.json", tvl_chat_dir / "G100.json"], "game")
    assert len(game) and game.hard.any(axis=1).all()
