"""The OpenVINO backend: float32 from the version's published ONNX graph and int8 from the OpenVINO model NNCF
made at publication (stored in ``openvino/``, listed in the manifest), label agreement with PyTorch float32,
nothing written or exported when serving, and a changed model refused."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from worker.errors import ModelError, RepositoryError
from worker.model import precision
from worker.model.chunks import PACK_TOKENS, PACKED_PASS_TOKENS
from worker.model.labels import decide
from worker.model.load import load_model
from worker.model.openvino_export import int8_model, nncf_available
from worker.model.repository import read_manifest
from worker.model.traced import PACKED_INPUTS, PADDED_INPUTS
from worker.model.untrained import init_version

from ...conftest import LABELS, SAMPLE
from .helpers import flip_a_bit, written

pytestmark = pytest.mark.skipif(not nncf_available(), reason="openvino and nncf are not installed")

TEXTS = [line for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()][:120]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny version published with its ONNX graphs and its OpenVINO int8 model (shared: copy before changing)."""
    repo = tmp_path_factory.mktemp("published")
    init_version(repo, preset="tiny", labels=LABELS, texts=TEXTS, graphs=True)
    return repo


def test_the_int8_model_is_published_with_the_version(published: Path) -> None:
    listed = read_manifest(published / "1").files
    assert {"openvino/model-int8.xml", "openvino/model-int8.bin"} <= set(listed)
    assert not (published / "1" / ".onnx").exists()  # the stage's cache is not published


@pytest.mark.parametrize(("dtype", "tolerance"), [("float32", 1e-4), ("int8", 0.02)])
def test_labels_agree_with_torch_float32(published: Path, dtype: str, tolerance: float) -> None:
    reference = load_model(published, dtype="float32", backend="torch", smoke_test=False)
    model = load_model(published, dtype=dtype, backend="openvino")  # includes the smoke test
    assert (model.backend_name, model.dtype_name) == ("openvino", dtype)
    expected, probs = reference.predict_texts(TEXTS), model.predict_texts(TEXTS)
    assert np.abs(probs - expected).max() < tolerance
    agreement = (decide(probs, reference.thresholds, True) == decide(expected, reference.thresholds, True)).all(1)
    assert agreement.mean() >= 0.95


def test_the_int8_model_takes_packed_rows(published: Path, tmp_path: Path) -> None:
    """NNCF quantises the network traced packed, as ONNX Runtime's int8 graph (several comments a row, each
    attending to its own tokens), calibrated on packed rows; its activation scales are fixed, so a comment scores
    the same alone as among others. DistilBERT, which has no packed forward, stays padded."""
    model = load_model(published, dtype="int8", backend="openvino", smoke_test=False)
    backend = model.backend
    assert backend.pack_tokens == PACK_TOKENS and backend._inputs == list(PACKED_INPUTS)  # type: ignore[attr-defined]
    together = model.predict_texts(TEXTS[:40])
    alone = np.concatenate([model.predict_texts([t]) for t in TEXTS[:40]])
    assert np.abs(together - alone).max() < 1e-3
    distil = tmp_path / "distil"
    init_version(distil, preset="tiny", labels=LABELS, texts=TEXTS, arch="distilbert", graphs=True)
    padded = load_model(distil, dtype="int8", backend="openvino", smoke_test=False).backend
    assert padded.pack_tokens == 0 and padded._inputs == list(PADDED_INPUTS)  # type: ignore[attr-defined]


def test_the_products_on_first_tokens_stay_out_of_quantisation(published: Path) -> None:
    """The packed graph's last layer past its attention, pooler and classifier run on one token a comment (2-D
    activations): NNCF leaves them in float, every other matrix product takes quantised activations."""
    import openvino as ov

    def rank(op: ov.Node) -> int:
        return int(op.input_value(0).get_partial_shape().rank.get_length())

    def quantised(op: ov.Node) -> bool:
        return any(i.get_source_output().get_node().get_type_name() == "FakeQuantize" for i in op.inputs())

    model = ov.Core().read_model(str(int8_model(published / "1")))
    products = [op for op in model.get_ops() if op.get_type_name() == "MatMul"]
    on_first = [op for op in products if rank(op) == 2]
    assert len(on_first) == 5  # attention output, feed-forward up and down, pooler, classifier
    assert not any(quantised(op) for op in on_first)
    assert any(quantised(op) for op in products if rank(op) == 3)


def test_serving_loads_only_the_published_files(published: Path, caplog: pytest.LogCaptureFixture) -> None:
    before = written(published)
    with caplog.at_level(logging.INFO, logger="worker"):
        int8 = load_model(published, dtype="int8", backend="openvino", smoke_test=False)
        float32 = load_model(published, dtype="float32", backend="openvino", smoke_test=False)
    assert int8.backend.source == published / "1" / "openvino" / "model-int8.xml"  # type: ignore[attr-defined]
    assert float32.backend.source == published / "1" / "onnx" / "model-float32.onnx"  # type: ignore[attr-defined]
    assert written(published) == before
    assert not any("exported" in r.getMessage() or "made the OpenVINO" in r.getMessage() for r in caplog.records)


def test_a_changed_int8_model_is_refused(published: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(published, repo)
    weights = repo / "1" / "openvino" / "model-int8.bin"
    flip_a_bit(weights, weights.stat().st_size // 2)
    with pytest.raises(RepositoryError, match=r"openvino/model-int8\.bin does not have the sha256"):
        load_model(repo, dtype="int8", backend="openvino")
    with pytest.raises(ModelError, match="no intact OpenVINO int8 model"):  # nor would the backend read it
        int8_model(repo / "1")


def test_a_version_without_one_is_served_by_the_next_engine(
    tiny_repo: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_vnni"}))
    monkeypatch.setitem(precision.CLASS_ORDER, "vnni", ("openvino:int8", "onnxruntime:int8"))  # OpenVINO first
    before = written(tiny_repo / "1")
    with pytest.raises(ModelError, match="no intact OpenVINO int8 model"):
        load_model(tiny_repo, dtype="int8", backend="openvino", smoke_test=False)
    with caplog.at_level(logging.WARNING, logger="worker"):
        model = load_model(tiny_repo, smoke_test=False)
    assert (model.backend_name, model.dtype_name) == ("onnxruntime", "int8")
    assert any("openvino int8 cannot serve" in r.getMessage() for r in caplog.records)
    assert not any(name.startswith("openvino") for name in written(tiny_repo / "1") - before)  # never made here


def test_bfloat16_needs_native_bf16(published: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    with pytest.raises(ModelError, match="native bf16"):
        load_model(published, dtype="bfloat16", backend="openvino", smoke_test=False)


def test_publication_records_agreement_and_rates_for_this_cpu_class(
    published: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from trainer.precision import record_agreement

    vdir = published / "1"
    with caplog.at_level(logging.INFO, logger="trainer.precision"):
        agreement, rates = record_agreement(vdir, read_manifest(vdir), TEXTS, 40)
    timed = [r.getMessage() for r in caplog.records if "in batches of 4" in r.getMessage()]
    assert timed and not any("nan in batches" in m for m in timed)  # the rates ranked by take small batches too
    assert all("comments/s in batches of 256," in m for m in timed)  # and full ones, as measured
    assert "openvino:int8" in agreement and 0.0 <= agreement["openvino:int8"] <= 1.0
    assert set(rates) == {precision.cpu_class()}
    measured = rates[precision.cpu_class()]
    assert {"torch:float32", "openvino:int8", *agreement} <= set(measured)
    assert all(rate > 0 for rate in measured.values())


@pytest.mark.parametrize(
    ("rates", "agreement", "expected"),
    [
        ({"vnni": {"onnxruntime:int8": 300.0, "openvino:int8": 200.0}}, None, "onnxruntime:int8"),
        ({"vnni": {"onnxruntime:int8": 100.0, "openvino:int8": 200.0}}, None, "openvino:int8"),
        ({"vnni": {"onnxruntime:int8": 300.0, "openvino:int8": 200.0}}, {"onnxruntime:int8": 0.99}, "openvino:int8"),
        ({"amx": {"openvino:float32": 900.0}}, None, precision.CLASS_ORDER["vnni"][0]),  # another class's: not counted
        ({"vnni": {"openvino:float32": 900.0}}, None, precision.CLASS_ORDER["vnni"][0]),  # float32 stays last
    ],
)
def test_auto_ranks_engines_by_the_rates_recorded_for_this_cpu_class(
    monkeypatch: pytest.MonkeyPatch,
    rates: dict[str, dict[str, float]],
    agreement: dict[str, float] | None,
    expected: str,
) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_vnni"}))
    engine = precision.resolve_engine("cpu", "auto", "auto", agreement, rates)
    assert f"{engine.backend}:{engine.dtype}" == expected


@pytest.mark.parametrize(
    ("flags", "rates", "expected"),
    [
        ({"avx512_vnni", "amx_int8", "amx_bf16"}, None, "openvino"),  # the AMX class's first int8 engine
        (
            {"avx512_vnni", "amx_int8", "amx_bf16"},
            {"amx": {"onnxruntime:int8": 300.0, "openvino:int8": 200.0}},
            "onnxruntime",
        ),
        ({"avx512_vnni"}, None, "onnxruntime"),
        ({"avx512_vnni"}, {"vnni": {"onnxruntime:int8": 100.0, "openvino:int8": 200.0}}, "openvino"),
    ],
)
def test_int8_asked_for_by_name_runs_the_int8_engine_auto_would(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], rates: dict[str, dict[str, float]] | None, expected: str
) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    # the agreement recorded does not matter: a dtype asked for by name is served as asked
    assert precision.resolve_engine("cpu", "int8", "auto", {"openvino:int8": 0.9}, rates).backend == expected
    assert precision.resolve_engine("cpu", "float32", "auto", None, rates).backend == "onnxruntime"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx2"}, "no-vnni"),
        ({"avx2", "avx512f"}, "no-vnni"),
        ({"avx2", "avx_vnni"}, "vnni"),
        ({"avx512f", "avx512_vnni", "avx512_bf16"}, "vnni"),
        ({"avx512_vnni", "amx_int8", "amx_bf16"}, "amx"),
    ],
)
def test_cpu_classes(monkeypatch: pytest.MonkeyPatch, flags: set[str], expected: str) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    assert precision.cpu_class() == expected


def test_workers_do_not_pin_their_threads_to_one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    import openvino.properties as props
    import openvino.properties.hint as hints

    from worker.model.backends.openvino import compile_config

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_vnni", "avx512_bf16"}))
    config = compile_config("int8", 1)
    assert config[hints.enable_cpu_pinning] is False  # OpenVINO's default pins every process to the same core
    assert config[props.inference_num_threads] == 1 and config[hints.inference_precision] == "f32"
    assert compile_config("bfloat16", 2)[hints.inference_precision] == "bf16"


def test_int8_runs_its_float_layers_in_bf16_on_amx_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import openvino.properties.hint as hints

    from worker.model.backends.openvino import compile_config

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_vnni", "avx512_bf16", "amx_int8"}))
    assert compile_config("int8", 1)[hints.inference_precision] == "bf16"
    assert compile_config("float32", 1)[hints.inference_precision] == "f32"


def test_attention_runs_as_plain_nodes_on_amx_only(published: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On AMX the CPU plugin's own key turns its generated attention kernels off; the installed OpenVINO accepts
    it (a compile with the AMX config, on any CPU) and scores as with its default."""
    from worker.model.backends.openvino import compile_config

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_vnni", "avx512_bf16"}))
    assert "SNIPPETS_MODE" not in compile_config("int8", 1)
    default = load_model(published, dtype="int8", backend="openvino", smoke_test=False).predict_texts(TEXTS)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_vnni", "avx512_bf16", "amx_int8"}))
    assert compile_config("int8", 1)["SNIPPETS_MODE"] == "DISABLE"
    model = load_model(published, dtype="int8", backend="openvino")  # bf16 layers where the CPU has them
    assert np.abs(model.predict_texts(TEXTS) - default).max() < 0.02


def test_packed_passes_are_larger_on_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.model.backends.openvino import AMX_PASS_TOKENS, pass_tokens

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_vnni", "amx_int8"}))
    assert pass_tokens() == AMX_PASS_TOKENS > PACKED_PASS_TOKENS
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_vnni"}))
    assert pass_tokens() == PACKED_PASS_TOKENS


def test_making_it_prints_nothing_on_the_standard_output(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    init_version(tmp_path / "repo", preset="tiny", labels=LABELS, texts=TEXTS[:40], graphs=True)
    assert (tmp_path / "repo" / "1" / "openvino" / "model-int8.xml").is_file()
    assert capfd.readouterr().out == ""  # what `livetopic bench --json` prints is one JSON object


def test_a_version_published_again_keeps_its_model(published: Path, tmp_path: Path) -> None:
    from worker.model import manage

    repo = tmp_path / "repo"
    shutil.copytree(published, repo)
    shutil.copytree(repo / "1", repo / "2")  # a second version, so that there is one to roll back to
    files = [repo / "1" / "openvino" / name for name in ("model-int8.xml", "model-int8.bin")]
    written = [f.stat().st_mtime_ns for f in files]
    assert manage.rollback(repo, 1) == (3, 1)
    for file, before in zip(files, written, strict=True):  # hard-linked as they are: not quantised, not rewritten
        assert (repo / "3" / "openvino" / file.name).stat().st_ino == file.stat().st_ino
        assert file.stat().st_mtime_ns == before
    assert int8_model(repo / "3") == repo / "3" / "openvino" / "model-int8.xml"


def test_calibration_comments_are_cut_where_the_models_positions_end(tmp_path: Path) -> None:
    """A validation comment longer than a small model's positions (128 here) once made NNCF's calibration fail."""
    from worker.model.openvino_export import prepare_int8

    repo = tmp_path / "repo"
    init_version(repo, preset="tiny", labels=LABELS, texts=TEXTS, graphs=False)
    stage = repo / "1"
    long_comment = "加油" * 200  # 400 characters: more tokens than the model has positions
    assert prepare_int8(stage, [long_comment, *TEXTS[:20]]) is not None
