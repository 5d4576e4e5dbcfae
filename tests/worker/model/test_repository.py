from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.errors import RepositoryError
from worker.model.repository import (
    MANIFEST_NAME,
    Manifest,
    latest_version,
    list_versions,
    publish_version,
    resolve_version,
)
from worker.text import Preprocessor


def test_modes() -> None:
    text = "  好球🔥 NICE!!  "
    assert Preprocessor("raw")(text) == "好球🔥 nice!!"
    assert Preprocessor("remove_emoji")(text) == "好球 nice!!"
    assert Preprocessor("remove_punct")(text) == "好球 nice"
    assert "火" in Preprocessor("demojize")(text)
    assert Preprocessor("raw", lowercase=False, normalize_whitespace=False)(text) == text
    with pytest.raises(ValueError):
        Preprocessor("nope")  # type: ignore[arg-type]


def _write(files: dict[str, str]):  # type: ignore[no-untyped-def]
    def write(out: Path) -> None:
        for name, body in files.items():
            (out / name).write_text(body)
    return write


def test_publish_numbers_versions_and_writes_manifest_last(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    manifest = Manifest(labels=["A", "B"], thresholds={"A": 0.3})
    assert publish_version(repo, _write({"config.json": "{}"}), manifest) == 1
    assert publish_version(repo, _write({"config.json": "{}"}), manifest) == 2
    assert list_versions(repo) == [1, 2] and latest_version(repo) == 2
    saved = json.loads((repo / "2" / MANIFEST_NAME).read_text())
    assert saved["version"] == 2 and saved["thresholds"] == {"A": 0.3}
    assert not list(repo.glob(".tmp-*"))
    (repo / "3").mkdir()  # a version without manifest is incomplete: invisible
    assert latest_version(repo) == 2
    assert resolve_version(repo) == (repo / "2", 2)
    assert resolve_version(repo / "1") == (repo / "1", 1)
    with pytest.raises(RepositoryError, match="incomplete"):
        resolve_version(repo, 3)


def test_publish_refuses_pickle_and_cleans_up(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="pickle"):
        publish_version(tmp_path, _write({"pytorch_model.bin": "x"}), Manifest(labels=["A"]))
    assert list(tmp_path.iterdir()) == []


def test_manifest_validation() -> None:
    with pytest.raises(ValueError):
        Manifest(labels=["A", "A"])
    with pytest.raises(ValueError):
        Manifest(labels=["A"], thresholds={"B": 0.5})
    with pytest.raises(ValueError):
        Manifest(labels=["A"], thresholds={"A": 1.5})
    assert Manifest(labels=["A"]).threshold("A") == 0.5


def test_empty_repo(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="no complete model version"):
        resolve_version(tmp_path)


def test_char_vocabulary_is_saved_not_just_special_tokens(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from worker.model.untrained import build_char_tokenizer

    size = build_char_tokenizer(["加油加油", "nice 好球"], tmp_path, preprocess=Preprocessor("raw"))
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert len(tokenizer) == size > 5
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("加油 nice")["input_ids"])
    assert "[UNK]" not in tokens and tokens[:3] == ["[CLS]", "加", "油"]
