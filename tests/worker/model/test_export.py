"""ONNX graphs made once at publication and stored inside the version, covered by its manifest: a worker serves
them as they are (nothing exported, nothing written), refuses the version when one changed after publication,
and exports for itself only when its ONNX Runtime cannot read the published one."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from worker.errors import RepositoryError
from worker.model import onnx_export
from worker.model.load import load_model
from worker.model.repository import MANIFEST_NAME, publish_version, read_manifest
from worker.model.untrained import init_version

from ...conftest import LABELS, SAMPLE
from .helpers import flip_a_bit, written

TEXTS = SAMPLE.read_text(encoding="utf-8").splitlines()[:50]


@pytest.fixture
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The user's cache and the temporary directory, fresh: where a worker would export to."""
    places = [tmp_path / "xdg", tmp_path / "tmp"]
    for place in places:
        place.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(places[0]))
    monkeypatch.setattr(onnx_export.tempfile, "gettempdir", lambda: str(places[1]))
    return places


def test_a_version_carries_its_graphs_and_a_worker_exports_nothing(
    tmp_path: Path, caches: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    repo = tmp_path / "repo"
    init_version(repo, preset="tiny", labels=LABELS, texts=TEXTS, graphs=True)
    listed = read_manifest(repo / "1").files
    assert {"onnx/model-float32.onnx", "onnx/model-int8.onnx"} <= set(listed)
    before = written(repo)
    assert not any(name.startswith(".onnx") for name in before)  # no cache published with it
    caplog.clear()  # what the publication logged (its exports) is not the worker's
    for dtype in ("float32", "int8"):
        with caplog.at_level(logging.INFO, logger="worker"):
            model = load_model(repo, dtype=dtype, backend="onnxruntime")
        assert model.backend.graph == repo / "1" / "onnx" / f"model-{dtype}.onnx"  # type: ignore[attr-defined]
    assert not any("exported" in r.getMessage() for r in caplog.records)
    assert written(repo) == before, written(repo) ^ before
    exported = [name for place in caches for name in written(place) if "livetopic" in name or name.endswith(".onnx")]
    assert not exported  # (the libraries keep their own files there: ONNX Runtime's usage database, torch's)


def test_a_graph_changed_after_publication_makes_the_version_refused(tmp_path: Path, caches: list[Path]) -> None:
    repo = tmp_path / "repo"
    init_version(repo, preset="tiny", labels=LABELS, texts=TEXTS, graphs=True)
    graph = repo / "1" / "onnx" / "model-float32.onnx"
    flip_a_bit(graph, graph.stat().st_size // 2)
    with pytest.raises(RepositoryError, match=r"onnx/model-float32\.onnx does not have the sha256"):
        load_model(repo, dtype="float32", backend="onnxruntime")
    assert onnx_export.published_graph(repo / "1", "float32") is None  # nor would the exporter serve it


def test_a_published_graph_this_onnx_runtime_cannot_read_is_replaced_by_an_export(
    tmp_path: Path, caches: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    staging = tmp_path / "staging"
    init_version(staging, preset="tiny", labels=LABELS, texts=TEXTS)
    reference = load_model(staging, dtype="float32", backend="torch").predict_texts(TEXTS)

    def write(out: Path) -> None:  # published with a graph ONNX Runtime refuses (another exporter's, say)
        for item in (staging / "1").iterdir():
            if item.is_file() and item.name != MANIFEST_NAME:
                (out / item.name).write_bytes(item.read_bytes())
        (out / "onnx").mkdir()
        (out / "onnx" / "model-float32.onnx").write_bytes(b"not a graph this runtime reads")

    repo = tmp_path / "repo"
    publish_version(repo, write, read_manifest(staging / "1"))
    with caplog.at_level(logging.WARNING, logger="worker"):
        model = load_model(repo, dtype="float32", backend="onnxruntime")
    assert model.backend.graph.parent == repo / "1" / ".onnx"  # type: ignore[attr-defined]  # the cache
    assert any("exporting the version again" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(model.predict_texts(TEXTS), reference, atol=1e-5)
