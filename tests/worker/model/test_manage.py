"""Managing a repository's versions: which one is served, rollback and promote as new publications of earlier
files (never renumbering, never republishing damage), the label-change rule, removal never of the served one."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.errors import RepositoryError
from worker.model import manage
from worker.model.repository import CANDIDATES_DIR, CopyOf, read_manifest
from worker.model.untrained import init_version

from ...conftest import LABELS, SAMPLE
from ...versions import republish, truncate_weights
from .helpers import flip_a_bit

TEXTS = SAMPLE.read_text(encoding="utf-8").splitlines()[:50]


def _init(repo: Path, seed: int, labels: list[str] = LABELS, graphs: bool = True, **kwargs: object) -> int:
    return init_version(repo, preset="tiny", labels=labels, texts=TEXTS, seed=seed, graphs=graphs, **kwargs)  # type: ignore[arg-type]


def _contents(vdir: Path) -> dict[str, str]:
    return {name: record.sha256 for name, record in read_manifest(vdir).files.items()}


def test_the_newest_complete_version_is_the_served_one(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _init(repo, 0)
    _init(repo, 1)
    republish(repo, repo / "2")
    truncate_weights(repo / "3")  # shorter than its manifest lists: still being copied, or damaged
    found = manage.versions(repo)
    assert [(e.number, e.served) for e in found] == [(1, False), (2, True), (3, False)]
    assert found[2].problem is not None and "incomplete" in found[2].problem
    assert manage.served_version(repo) == 2 and manage.served_version(tmp_path / "none") is None


def test_a_rollback_publishes_the_earlier_files_again_as_the_next_version(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _init(repo, 0)
    _init(repo, 1)
    assert manage.rollback(repo) == (3, 1)  # the version served before the served one
    assert _contents(repo / "3") == _contents(repo / "1") != _contents(repo / "2")
    assert read_manifest(repo / "3").copy_of == CopyOf(kind="version", number=1)
    weights = "model.safetensors"
    assert (repo / "3" / weights).stat().st_ino == (repo / "1" / weights).stat().st_ino  # a hard link: no space
    assert manage.served_version(repo) == 3
    assert manage.rollback(repo) == (4, 2)  # a second rollback undoes the first
    assert _contents(repo / "4") == _contents(repo / "2")
    assert manage.rollback(repo, 1) == (5, 1)
    with pytest.raises(RepositoryError, match="version 5 is the one served already"):
        manage.rollback(repo, 5)
    with pytest.raises(RepositoryError, match="there is no version 9"):
        manage.rollback(repo, 9)
    assert [e.number for e in manage.versions(repo)] == [1, 2, 3, 4, 5]  # history kept, nothing renumbered


def test_a_damaged_version_is_never_published_again(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _init(repo, 0)
    _init(repo, 1)
    weights = repo / "1" / "model.safetensors"
    flip_a_bit(weights)  # same size, other bytes: the manifest's sha256 no longer holds
    with pytest.raises(RepositoryError, match="does not have the sha256 its manifest lists"):
        manage.rollback(repo, 1)
    assert manage.served_version(repo) == 2 and len(manage.versions(repo)) == 2


def test_a_label_change_needs_change_labels(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _init(repo, 0)
    _init(repo, 1, ["加油", "閒聊"], labels_change_intended=True)
    with pytest.raises(RepositoryError, match="pass --change-labels if that is intended"):
        manage.rollback(repo, 1)
    assert manage.rollback(repo, 1, change_labels=True) == (3, 1)
    assert read_manifest(repo / "3").labels_change_intended  # running workers swap it in
    assert manage.rollback(repo, 1, change_labels=False) == (4, 1)  # same labels as the served one: no change
    assert not read_manifest(repo / "4").labels_change_intended


def test_promote_publishes_a_candidate_and_takes_it_out_of_the_candidates(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _init(repo, 0)
    _init(repo / CANDIDATES_DIR, 1)
    candidate = _contents(repo / CANDIDATES_DIR / "1")
    with pytest.raises(RepositoryError, match="there is no candidate 2"):
        manage.promote(repo, 2)
    assert manage.promote(repo, 1) == 2
    assert _contents(repo / "2") == candidate and manage.candidates(repo) == []
    assert read_manifest(repo / "2").copy_of == CopyOf(kind="candidate", number=1)
    assert manage.served_version(repo) == 2


def test_remove_never_takes_the_served_version(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _init(repo, 0)
    _init(repo, 1)
    _init(repo / CANDIDATES_DIR, 2)
    with pytest.raises(RepositoryError, match="version 2 is the one workers serve"):
        manage.remove(repo, 2)
    manage.remove(repo, 1)
    assert [e.number for e in manage.versions(repo)] == [2]
    assert not any(p.name.startswith(".removed") for p in repo.iterdir())
    with pytest.raises(RepositoryError, match="there is no version 1"):
        manage.remove(repo, 1)
    manage.remove(repo, 1, candidate=True)
    assert manage.candidates(repo) == []
    with pytest.raises(RepositoryError, match="there is no candidate 1"):
        manage.remove(repo, 1, candidate=True)


def test_a_copy_carries_the_onnx_graphs_made_once(tmp_path: Path) -> None:
    """A version published before graphs were gets them when it is published again; a copy of one that has
    them links them."""
    repo = tmp_path / "repo"
    _init(repo, 0, graphs=False)
    _init(repo, 1)
    graphs = {"onnx/model-float32.onnx", "onnx/model-int8.onnx"}
    assert manage.rollback(repo, 1) == (3, 1)
    assert graphs <= set(read_manifest(repo / "3").files) and not (repo / "3" / ".onnx").exists()
    assert manage.rollback(repo, 2) == (4, 2)
    assert {n: s for n, s in _contents(repo / "4").items() if n in graphs} == {
        n: s for n, s in _contents(repo / "2").items() if n in graphs
    }
