"""``train --layer multitask``: one network, three heads (general, game where general gives Game, sentiment),
trained on the small made-up chat exports, published as a standard 12-output checkpoint whose manifest splits the
outputs into heads; loaded and scored from one run; ``evaluate`` per head; a bad heads spec refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from trainer.data import split_games
from trainer.layers import LAYERS
from trainer.multitask import HEADS, heads_loss, heads_metrics, load_multitask
from worker.errors import RepositoryError
from worker.model.backends.base import config_labels, read_config
from worker.model.cascade import run_cascade
from worker.model.load import load_model
from worker.model.manage import link_files
from worker.model.repository import Manifest, publish_version, read_manifest

from ..cli.helpers import run_command
from ..multitask import train_into, train_multitask
from .test_layers import write_exports

OUTPUTS = LAYERS["general"] + LAYERS["game"] + LAYERS["sentiment"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_multitask(tmp_path_factory.mktemp("multitask"))


def test_each_head_learns_from_its_own_rows(tmp_path: Path) -> None:
    data = load_multitask([write_exports(tmp_path / "data")])
    assert data.labels == OUTPUTS and len(data) == 6 * 80 and data.mask is not None
    game_on = data.hard[:, 4:9].any(axis=1)
    assert data.mask[:, :4].all()  # general: every comment
    assert (data.mask[:, 4:9] == game_on[:, None]).all() and 0 < game_on.sum() < len(data)
    scored = np.isin(data.groups, ["G0", "G2", "G4"])  # the games with sentiment scores
    assert (data.mask[:, 9:] == scored[:, None]).all()
    assert (data.targets[scored][:, 9:].sum(axis=1) == 1).all()  # the top class
    assert not data.targets[~scored][:, 9:].any() and not np.isnan(data.targets).any()


def test_the_loss_ignores_what_a_head_does_not_own() -> None:
    import torch
    import torch.nn.functional as F

    logits = torch.randn(3, 12, requires_grad=True)
    targets = torch.zeros(3, 12)
    targets[0, [1, 4]] = 1.0  # Game, Player
    targets[0, 9 + 2] = 1.0  # positive
    targets[1:, 4:] = float("nan")  # rows 1 and 2: no game topic, no sentiment scores
    loss = heads_loss(logits, targets)
    expected = (
        F.binary_cross_entropy_with_logits(logits[:, :4], targets[:, :4])
        + F.binary_cross_entropy_with_logits(logits[:1, 4:9], targets[:1, 4:9])
        + F.cross_entropy(logits[:1, 9:], torch.tensor([2]))
    )
    assert torch.isclose(loss, expected)
    loss.backward()
    assert logits.grad is not None and not logits.grad[1:, 4:].any()  # masked cells get no gradient
    assert logits.grad[1:, :4].abs().sum() > 0


def test_a_multitask_version_is_one_network_served_as_three_heads(trained: tuple[Path, Path]) -> None:
    repo, _ = trained
    manifest = read_manifest(repo / "1")
    assert manifest.labels == OUTPUTS and manifest.heads == HEADS
    assert config_labels(read_config(repo / "1")) == OUTPUTS  # a standard 12-output Hugging Face classifier
    assert {"onnx/model-int8.onnx", "openvino/model-int8.xml"} <= set(manifest.files)  # exported as any other
    model = load_model(repo, device="cpu", dtype="float32", backend="torch")
    assert (model.tag, model.stage_name, model.labels) == ("multitask:1", "general", LAYERS["general"])
    assert [h.name for h in model.heads] == ["general", "game", "sentiment"] and not model.stages
    texts = ["三號好強 好棒", "晚餐吃啥 嗯嗯", "裁判眼殘 好爛", "畫面卡住", "衝呀衝呀 快攻戰術"] * 4
    general, game, sentiment = run_cascade(model, texts)
    outputs = model.predict_texts(texts)
    assert np.allclose(outputs[:, 9:].sum(axis=1), 1.0, atol=1e-4)  # the sentiment head: a softmax
    assert np.array_equal(general.probs, outputs[:, :4])
    with_game = [i for i, labels in enumerate(general.labels) if "Game" in labels]
    assert game.rows.tolist() == with_game and np.array_equal(game.probs, outputs[with_game, 4:9])
    assert sentiment.rows.tolist() == list(range(len(texts))) and all(len(x) == 1 for x in sentiment.labels)
    assert game.seconds == sentiment.seconds == 0.0  # from the first run, none of their own
    onnx = load_model(repo, device="cpu", dtype="float32", backend="onnxruntime")
    assert np.allclose(onnx.predict_texts(texts), outputs, atol=1e-4)  # the published graph: the same 12 outputs


def test_evaluate_reports_each_head_and_the_eight_topics(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, data = trained
    capsys.readouterr()
    argv = ["evaluate", "--model", str(repo), "--data", str(data), "--dtype", "float32"]
    assert run_command(*argv, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["source"], result["games"]) == ("multitask", 2)
    assert set(result["stages"]) == {"general", "game", "sentiment"}
    assert result["stages"]["sentiment"]["n"] == 80  # G0 only has sentiment scores
    assert result["stages"]["game"]["n"] < result["stages"]["general"]["n"] == 160
    assert 0.0 <= result["topics_cascade"]["micro_f1"] <= 1.0
    assert run_command(*argv) == 0
    out = capsys.readouterr().out
    assert "multi-task multitask:1" in out and "head game (game): " in out and "8 topics, cascade" in out


@pytest.mark.parametrize(
    ("heads", "error"),
    [
        (lambda h: [h[1], h[0], h[2]], "not the version's outputs"),
        (lambda h: [h[0], h[1].model_copy(update={"when": "general.Goal"}), h[2]], "general has no label 'Goal'"),
        (lambda h: [h[0], h[1].model_copy(update={"when": "sentiment.positive"}), h[2]], "names no earlier head"),
        (lambda h: [h[0], h[1], h[2].model_copy(update={"name": "general"})], "given twice"),
        (lambda h: [h[0].model_copy(update={"labels": OUTPUTS})], "at least two heads"),
    ],
)
def test_a_bad_heads_spec_refuses_the_version(
    trained: tuple[Path, Path], tmp_path: Path, heads: object, error: str
) -> None:
    repo, _ = trained
    good = read_manifest(repo / "1")
    raw = json.loads(good.model_dump_json())
    raw["heads"] = [h.model_dump() for h in heads(list(good.heads))]  # type: ignore[operator]
    with pytest.raises(ValidationError, match=error):
        Manifest.model_validate(raw)
    publish_version(tmp_path / "bad", lambda out: link_files(repo / "1", out), good)
    (tmp_path / "bad" / "1" / "livetopic.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(RepositoryError, match=error):
        load_model(tmp_path / "bad", device="cpu", dtype="float32", backend="torch")


def test_the_publish_gate_compares_heads_with_heads(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """A second multi-task run into the same repository: version 1 is scored head by head on the same validation
    rows, as the new model was (the mean of the heads' micro F1)."""
    served, data = trained
    repo = tmp_path / "repo"
    publish_version(repo, lambda out: link_files(served / "1", out), read_manifest(served / "1"))
    train_into(repo, data, tmp_path / "run", epochs=1, force=True)
    gate = read_manifest(repo / "2").metrics["publish"]
    assert gate["replaces"] == 1 and "validation micro F1" in gate["reason"]
    rows = load_multitask([data])
    val = rows.in_groups(split_games(rows.groups, test_games=["G0", "G1"]).val)
    first = load_model(repo / "1", device="cpu", dtype="float32", backend="torch")
    expected = heads_metrics(first.predict_texts(val.texts), val, first.thresholds)[0]["micro_f1"]
    assert gate["replaced_micro_f1"] == pytest.approx(expected, abs=1e-6)
