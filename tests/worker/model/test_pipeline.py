"""Pipeline versions: built from other repositories' versions, loaded and validated as one unit (a stage that
fails refuses the version), conditions checked against the labels of the stage they name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from worker.errors import ConfigError, LivetopicError, ModelError
from worker.model.load import load_model
from worker.model.manage import link_files
from worker.model.pipeline import build_pipeline, parse_stage
from worker.model.repository import Manifest, publish_version, read_manifest
from worker.model.stages import StageSpec

from ...conftest import LABELS
from ...pipelines import GAME_LABELS, SENTIMENT_LABELS, make_layers


@pytest.fixture(scope="module")
def layers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_layers(tmp_path_factory.mktemp("layers"))


def sources(layers: dict[str, Path], when: str = "general.Game") -> list:  # type: ignore[type-arg]
    return [
        parse_stage(f"general={layers['general']}"),
        parse_stage(f"game={layers['game']}:1:when={when}"),
        parse_stage(f"sentiment={layers['sentiment']}"),
    ]


def test_parse_stage() -> None:
    stage = parse_stage("game=models/game:3:when=general.Game")
    assert (stage.name, stage.repo, stage.version, stage.when) == ("game", Path("models/game"), 3, "general.Game")
    assert parse_stage("general=/m/general").version is None
    with pytest.raises(ConfigError, match=r"STAGE\.LABEL"):
        parse_stage("game=m:when=Game")
    with pytest.raises(ConfigError, match="NAME=REPO"):
        parse_stage("models/game")


def test_a_pipeline_is_built_and_loads_as_one_model(layers: dict[str, Path], tmp_path: Path) -> None:
    number = build_pipeline(tmp_path / "p", sources(layers), name="cascade")
    vdir = tmp_path / "p" / str(number)
    manifest = read_manifest(vdir)
    assert manifest.labels == LABELS and [s.name for s in manifest.pipeline] == ["general", "game", "sentiment"]
    assert (vdir / "game" / "livetopic.json").is_file() and "game/model.safetensors" in manifest.files
    model = load_model(tmp_path / "p", device="cpu", dtype="float32", backend="torch")
    assert (model.tag, model.stage_name, model.labels) == ("cascade:1", "general", LABELS)
    assert [(s.name, s.model.labels, str(s.when)) for s in model.stages] == [
        ("game", GAME_LABELS, "general.Game"),
        ("sentiment", SENTIMENT_LABELS, "None"),
    ]


def test_build_refuses_a_condition_on_a_label_the_stage_lacks(layers: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="general has no label 'Sport'"):
        build_pipeline(tmp_path / "p", sources(layers, when="general.Sport"), name="cascade")
    with pytest.raises(ConfigError, match="names no earlier stage"):
        build_pipeline(tmp_path / "p", sources(layers, when="sentiment.positive"), name="cascade")
    with pytest.raises(ConfigError, match="lowercase"):
        build_pipeline(tmp_path / "p", [parse_stage(f"General={layers['general']}")], name="cascade")
    assert not (tmp_path / "p").exists() or not list((tmp_path / "p").iterdir())  # nothing published


def test_a_stage_that_does_not_load_refuses_the_version(layers: dict[str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "p"
    build_pipeline(repo, sources(layers), name="cascade")
    good = repo / "1"

    def without_game_tokenizer(out: Path) -> None:
        link_files(good, out)
        for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
            (out / "game" / name).unlink(missing_ok=True)

    publish_version(repo, without_game_tokenizer, read_manifest(good))  # complete and intact as published
    with pytest.raises(LivetopicError, match="stage 'game' does not load"):
        load_model(repo, 2, device="cpu", dtype="float32", backend="torch")


def test_a_stage_may_be_a_pinned_version_of_another_repository(layers: dict[str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "models" / "p"
    shutil.copytree(layers["general"], tmp_path / "models" / "general")
    general = read_manifest(tmp_path / "models" / "general" / "1")
    manifest = Manifest(
        name="pinned",
        labels=general.labels,
        pipeline=[
            StageSpec(name="general", repo="general", version=1),  # relative: beside this repository
            StageSpec(name="sentiment", repo=str(layers["sentiment"]), version=1, when="general.Chat"),
        ],
    )
    publish_version(repo, lambda out: None, manifest)
    model = load_model(repo, device="cpu", dtype="float32", backend="torch")
    assert [s.name for s in model.stages] == ["sentiment"] and model.tag == "pinned:1"


def test_the_manifest_refuses_a_conditional_first_stage() -> None:
    with pytest.raises(ValueError, match="takes no condition"):
        Manifest(labels=["A"], pipeline=[StageSpec(name="a", path="a", when="b.X")])
    with pytest.raises(ValueError, match="inside the version"):
        StageSpec(name="a", path="../elsewhere")
