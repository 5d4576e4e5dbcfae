"""The ONNX Runtime backend: BERT, DistilBERT and RoBERTa exported once (cached beside the version, keyed by
the weights), float32 equal to PyTorch's and int8 close to it, the worker's threads, and a fallback place for
the export where the repository cannot be written."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from worker.errors import ModelError
from worker.model import onnx_export
from worker.model.backends.graph import sigmoid, softmax
from worker.model.load import load_model
from worker.model.untrained import init_version

from .helpers import flip_a_bit

TEXTS = ["加油！", "好球 nice block 這球漂亮", "轉播卡住了", "😂", "教練喊暫停，換人了，這局要小心發球", "x" * 300]
LABELS = ["A", "B", "C"]


@pytest.fixture(scope="module", params=["bert", "distilbert", "roberta"])
def arch_repo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp(f"repo-{request.param}")
    init_version(repo, preset="tiny", labels=LABELS, texts=TEXTS, arch=request.param, name=request.param)
    return repo


@pytest.mark.parametrize(("dtype", "tolerance"), [("float32", 1e-5), ("int8", 0.02)])
def test_probabilities_close_to_torch_float32(arch_repo: Path, dtype: str, tolerance: float) -> None:
    reference = load_model(arch_repo, device="cpu", dtype="float32", backend="torch", smoke_test=False)
    model = load_model(arch_repo, device="cpu", dtype=dtype, backend="onnxruntime")  # smoke test included
    assert (model.backend_name, model.dtype_name) == ("onnxruntime", dtype)
    expected, got = reference.predict_texts(TEXTS), model.predict_texts(TEXTS)
    assert got.shape == expected.shape == (len(TEXTS), len(LABELS)) and got.dtype == np.float32
    assert np.abs(got - expected).max() < tolerance
    # padded rows score as they do alone (the mask is in the graph, not traced away)
    alone = np.concatenate([model.predict_texts([t]) for t in TEXTS])
    assert np.abs(alone - got).max() < (1e-5 if dtype == "float32" else 0.02)


def test_exported_once_and_cached_beside_the_version(arch_repo: Path) -> None:
    load_model(arch_repo, device="cpu", dtype="float32", backend="onnxruntime", smoke_test=False)
    graphs = sorted((arch_repo / "1" / onnx_export.ONNX_DIR).glob("model-float32-*.onnx"))
    assert len(graphs) == 1
    stamp = graphs[0].stat().st_mtime_ns
    model = load_model(arch_repo, device="cpu", dtype="float32", backend="onnxruntime", smoke_test=False)
    assert model.backend.graph == graphs[0] and graphs[0].stat().st_mtime_ns == stamp  # not exported again
    assert not [p for p in graphs[0].parent.iterdir() if p.name.startswith(".export-")]  # no leftovers


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_the_export_leaves_residual_adds_and_layer_norms_unfused(arch_repo: Path, dtype: str) -> None:
    import onnx

    graph = onnx_export.onnx_graph(arch_repo / "1", dtype)
    ops = {node.op_type for node in onnx.load(str(graph)).graph.node}
    assert "LayerNormalization" in ops and "SkipLayerNormalization" not in ops  # ORT's fused kernel is slower


def test_cache_key_follows_weights_dtype_and_libraries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_version(tmp_path, preset="tiny", labels=LABELS, texts=TEXTS, name="k")
    vdir = tmp_path / "1"
    key = onnx_export.cache_key(vdir, "float32")
    assert key == onnx_export.cache_key(vdir, "float32") and key != onnx_export.cache_key(vdir, "int8")
    monkeypatch.setattr(onnx_export, "_library_versions", lambda: "another onnxruntime")
    assert onnx_export.cache_key(vdir, "float32") != key
    monkeypatch.undo()
    weights = next(vdir.glob("*.safetensors"))
    flip_a_bit(weights)
    assert onnx_export.cache_key(vdir, "float32") != key


def test_unwritable_repository_falls_back_to_the_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    init_version(repo, preset="tiny", labels=LABELS, texts=TEXTS, name="ro")
    (repo / "1" / onnx_export.ONNX_DIR).write_text("not a directory")  # the repository's place cannot be used
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = load_model(repo, device="cpu", dtype="float32", backend="onnxruntime")
    assert model.backend.graph.parent == tmp_path / "cache" / "livetopic" / "onnx"
    assert np.isfinite(model.predict_texts(TEXTS)).all()


def test_session_threads_follow_the_workers_threads(tiny_repo: Path) -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = load_model(tiny_repo, device="cpu", dtype="int8", backend="onnxruntime", smoke_test=False)
    finally:
        torch.set_num_threads(before)
    assert model.backend.session.get_session_options().intra_op_num_threads == 1
    assert "1 thread(s)" in model.backend.description


def test_auto_falls_back_to_torch_when_the_export_fails(tiny_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.model.backends import onnxruntime as backend_mod
    from worker.model.backends import openvino as openvino_mod

    def refuse(model_dir: Path, dtype: str) -> Path:
        raise ModelError(f"{model_dir}: ONNX export failed: not this one")

    monkeypatch.setattr(backend_mod, "onnx_graph", refuse)
    monkeypatch.setattr(openvino_mod, "onnx_graph", refuse)  # OpenVINO reads the same graph
    model = load_model(tiny_repo, device="cpu", dtype="float32", smoke_test=False)
    assert model.backend_name == "torch"
    for dtype in ("auto", "int8"):  # every engine tried in turn (OpenVINO int8 first on VNNI CPUs), then PyTorch
        assert load_model(tiny_repo, device="cpu", dtype=dtype, smoke_test=False).backend_name == "torch"
    with pytest.raises(ModelError, match="ONNX export failed"):
        load_model(tiny_repo, device="cpu", dtype="float32", backend="onnxruntime", smoke_test=False)


def test_onnxruntime_runs_float32_and_int8_on_cpu_only(tiny_repo: Path) -> None:
    with pytest.raises(ModelError, match="onnxruntime on cpu runs float32, int8, not bfloat16"):
        load_model(tiny_repo, device="cpu", dtype="bfloat16", backend="onnxruntime", smoke_test=False)


def test_sigmoid_and_softmax_are_stable() -> None:
    logits = np.array([[-1000.0, 0.0, 1000.0]], dtype=np.float32)
    np.testing.assert_allclose(sigmoid(logits), [[0.0, 0.5, 1.0]], atol=1e-7)
    np.testing.assert_allclose(softmax(logits), [[0.0, 0.0, 1.0]], atol=1e-7)
    assert sigmoid(logits).dtype == softmax(logits).dtype == np.float32


def test_null_backend_returns_fixed_scores(tiny_repo: Path) -> None:
    model = load_model(tiny_repo, device="cpu", backend="null")
    probs = model.predict_texts(TEXTS)
    assert probs.shape == (len(TEXTS), 4) and (probs == probs[0]).all()
    assert model.backend_name == "null" and "stand-in" in model.backend.description
    assert model.decide(probs)[0] == ["Cheer", "Game"]  # 0.9, 0.63 over the 0.5 thresholds; 0.37, 0.1 under


def test_no_export_leftovers_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_version(tmp_path, preset="tiny", labels=LABELS, texts=TEXTS, name="f")

    def broken(model_dir: Path, out: Path, *, packed: bool, opset: int) -> object:
        out.write_bytes(b"half")
        raise ModelError("export failed half-way")

    monkeypatch.setattr(onnx_export, "export_network", broken)
    with pytest.raises(ModelError, match="half-way"):
        onnx_export.onnx_graph(tmp_path / "1", "float32")
    assert os.listdir(tmp_path / "1" / onnx_export.ONNX_DIR) == []


@pytest.mark.parametrize(("backend", "dtype"), [("onnxruntime", "int8"), ("torch", "float32")])
def test_a_model_is_freed_without_the_cyclic_collector(tiny_repo: Path, backend: str, dtype: str) -> None:
    """The worker freezes what it loaded at start (gc.freeze); a model replaced by a reload must then still
    be freed, which holds only if a loaded model has no reference cycles."""
    import gc
    import weakref

    model = load_model(tiny_repo, device="cpu", dtype=dtype, backend=backend)
    model.predict_texts(TEXTS)
    refs = [weakref.ref(model), weakref.ref(model.backend)]
    gc.disable()
    try:
        del model
        assert [r() for r in refs] == [None, None]
    finally:
        gc.enable()


def test_the_versions_graph_folder_is_trusted_as_far_as_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside the version, the graph folder may be the version owner's (the trainer's), but no one may write it
    who cannot write the version: else it is not used."""
    init_version(tmp_path / "repo", preset="tiny", labels=LABELS, texts=TEXTS, name="t")
    vdir = tmp_path / "repo" / "1"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    graph = onnx_export.onnx_graph(vdir, "float32")
    assert graph.parent == vdir / onnx_export.ONNX_DIR
    (vdir / onnx_export.ONNX_DIR).chmod(0o775)  # its group may write it, not the version
    assert onnx_export.onnx_graph(vdir, "float32").parent == tmp_path / "cache" / "livetopic" / "onnx"
    vdir.chmod(0o775)  # now that group may write the version as well
    assert onnx_export.onnx_graph(vdir, "float32") == graph


def test_a_graph_published_with_the_version_is_checked_against_its_manifest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A graph inside the version that the manifest lists (published with it) is served as it is when it has the
    listed sha256, without an export; changed, it is exported again and never served."""
    from worker.model.repository import publish_version, read_manifest

    init_version(tmp_path / "staging", preset="tiny", labels=LABELS, texts=TEXTS, name="p")
    staged = tmp_path / "staging" / "1"
    made = onnx_export.onnx_graph(staged, "float32")
    made.with_name(made.name + onnx_export.RECORD_SUFFIX).unlink()  # only the manifest will record it

    def write(out: Path) -> None:
        for item in staged.rglob("*"):
            if item.is_file() and item.name != "livetopic.json":
                (out / item.relative_to(staged)).parent.mkdir(exist_ok=True)
                (out / item.relative_to(staged)).write_bytes(item.read_bytes())

    repo = tmp_path / "repo"
    publish_version(repo, write, read_manifest(staged))
    graph = repo / "1" / onnx_export.ONNX_DIR / made.name
    assert f"{onnx_export.ONNX_DIR}/{made.name}" in read_manifest(repo / "1").files
    stamp = graph.stat().st_mtime_ns
    assert onnx_export.onnx_graph(repo / "1", "float32") == graph and graph.stat().st_mtime_ns == stamp
    flip_a_bit(graph)
    with caplog.at_level(logging.WARNING, logger="worker"):
        assert onnx_export.onnx_graph(repo / "1", "float32") == graph
    assert graph.read_bytes() == made.read_bytes()  # exported again (the same bytes: the export is reproducible)
    assert any("not the" in r.getMessage() and "recorded" in r.getMessage() for r in caplog.records)
