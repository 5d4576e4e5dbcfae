from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from worker.errors import RepositoryError
from worker.model.contents import (
    FileRecord,
    IncompleteVersion,
    OutsideRepository,
    check_complete,
    check_inside,
    check_intact,
    fingerprint,
)
from worker.model.repository import (
    MANIFEST_NAME,
    Manifest,
    latest_version,
    list_versions,
    publish_version,
    read_manifest,
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


def test_the_manifest_lists_every_published_file(tmp_path: Path) -> None:
    def write(out: Path) -> None:
        (out / "config.json").write_text("{}")
        (out / ".onnx").mkdir()
        (out / ".onnx" / "model-int8-k.onnx").write_bytes(b"graph")

    publish_version(tmp_path, write, Manifest(labels=["A"]))
    files = read_manifest(tmp_path / "1").files
    assert set(files) == {"config.json", ".onnx/model-int8-k.onnx"}  # not the manifest itself
    assert files["config.json"].size == 2 and files["config.json"].sha256 == hashlib.sha256(b"{}").hexdigest()


def _version(tmp_path: Path) -> tuple[Path, dict[str, FileRecord]]:
    def write(out: Path) -> None:
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"weights" * 100)

    publish_version(tmp_path / "repo", write, Manifest(labels=["A"]))
    vdir = tmp_path / "repo" / "1"
    return vdir, read_manifest(vdir).files


def test_complete_and_intact_as_the_manifest_lists(tmp_path: Path) -> None:
    vdir, files = _version(tmp_path)
    check_complete(vdir, files)
    check_intact(vdir, files)
    (vdir / ".onnx").mkdir()  # the graph cache is no part of it
    check_complete(vdir, files)
    weights = vdir / "model.safetensors"
    weights.write_bytes(b"weights" * 50)
    with pytest.raises(IncompleteVersion, match=r"model.safetensors has 350 bytes, the manifest lists 700"):
        check_complete(vdir, files)
    weights.write_bytes(b"WEIGHTS" * 100)  # the same size, other bytes
    check_complete(vdir, files)
    with pytest.raises(RepositoryError, match=r"model.safetensors does not have the sha256 its manifest lists"):
        check_intact(vdir, files)
    (vdir / "config.json").unlink()
    with pytest.raises(IncompleteVersion, match=r"config.json is missing"):
        check_complete(vdir, files)


def test_the_fingerprint_follows_every_file_but_the_graph_cache(tmp_path: Path) -> None:
    vdir, _ = _version(tmp_path)
    before = fingerprint(vdir)
    assert fingerprint(vdir) == before
    (vdir / ".onnx").mkdir()
    (vdir / ".onnx" / "model-float32-k.onnx").write_bytes(b"graph")  # what workers write
    assert fingerprint(vdir) == before
    (vdir / "tokenizer.json").write_text("{}")  # a file arrives
    added = fingerprint(vdir)
    assert added != before
    os.utime(vdir / "config.json", ns=(1, 1))  # a file is rewritten (the manifest included)
    assert fingerprint(vdir) != added


def test_symlinks_inside_the_repository_are_allowed_outside_refused(tmp_path: Path) -> None:
    vdir, _ = _version(tmp_path)
    repo = vdir.parent
    (repo / "2").symlink_to("1", target_is_directory=True)  # another name for a version of the repository
    check_inside(repo / "2", repo)
    (vdir / "tokenizer.json").symlink_to(repo / "1" / "config.json")
    check_inside(vdir, repo)
    (tmp_path / "elsewhere").mkdir()
    (repo / "3").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(OutsideRepository, match=r"3: refused: it is a symlink to .*elsewhere, outside the model"):
        check_inside(repo / "3", repo)
    (vdir / "vocab.txt").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutsideRepository, match=r"vocab.txt is a symlink to .*elsewhere, outside the model"):
        check_inside(vdir, repo)
