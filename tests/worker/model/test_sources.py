"""Models from elsewhere, staged as livetopic serves them: the four seed layouts load and score as transformers'
reference pipeline does on the published files (slow-only tokenizer and pickled weights included), only the
files a worker needs are taken, pickles are converted without running what they ask for, labels are kept as
published unless renamed."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from worker.errors import ModelError
from worker.model.contents import sha256_of
from worker.model.load import load_version
from worker.model.sources import choose_files, from_directory, manifest_for
from worker.model.tokenizer import PythonTokenizer

from ...hubseeds import SEEDS, Seed, reference_scores, seed_texts, write_seed

TOLERANCE = 1e-4  # the bound on fp32 scores


@pytest.fixture(scope="module", params=SEEDS, ids=[s.name for s in SEEDS])
def seed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Seed, Path]:
    return request.param, write_seed(request.param, tmp_path_factory.mktemp(request.param.name))


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_each_seed_layout_scores_as_the_reference_pipeline(
    seed: tuple[Seed, Path], backend: str, tmp_path: Path
) -> None:
    layout, published = seed
    staged = from_directory(published, tmp_path / "stage")
    manifest = manifest_for(staged, name=layout.name)
    assert manifest.labels == layout.labels  # as published: LABEL_0… stay LABEL_0…
    assert (manifest.problem_type == "multi_label_classification") == layout.multi_label
    texts = seed_texts(layout)
    expected = np.array(reference_scores(published, texts))
    assert (expected.max(axis=0) - expected.min(axis=0)).max() > 10 * TOLERANCE  # the scores tell texts apart
    model = load_version(staged.path, manifest, 0, device="cpu", dtype="float32", backend=backend)
    assert isinstance(model._tokenizer, PythonTokenizer) == layout.slow_tokenizer  # run as it is, not converted
    np.testing.assert_allclose(model.predict_texts(texts), expected, atol=TOLERANCE, rtol=0)


def test_only_what_a_worker_needs_is_staged_and_pickles_become_safetensors(
    seed: tuple[Seed, Path], tmp_path: Path
) -> None:
    layout, published = seed
    staged = from_directory(published, tmp_path / "stage")
    names = {p.name for p in staged.path.iterdir()}
    assert "config.json" in names and "model.safetensors" in names
    assert not names & {*layout.ignored, "pytorch_model.bin", "tf_model.h5", "README.md", ".gitattributes"}
    taken = staged.source.files
    assert set(taken) <= {p.name for p in published.iterdir()}
    for name, record in taken.items():  # pinned as published
        assert record.sha256 == sha256_of(published / name) and record.size == (published / name).stat().st_size
    if layout.weights == "bin":
        assert staged.source.converted == {"pytorch_model.bin": "model.safetensors"}
    else:
        assert staged.source.converted == {} and "pytorch_model.bin" not in taken


class _Planted:
    """Unpickling this makes a directory: what a hostile pickle could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def test_a_pickle_that_asks_for_more_than_tensors_is_refused_unrun(tmp_path: Path) -> None:
    layout = next(s for s in SEEDS if s.weights == "bin")
    published = write_seed(layout, tmp_path / "published")
    marker = tmp_path / "ran"
    state = torch.load(published / "pytorch_model.bin", weights_only=True)
    torch.save({**state, "extra": _Planted(marker)}, published / "pytorch_model.bin")
    with pytest.raises(ModelError, match="refused: this pickle holds more than tensors"):
        from_directory(published, tmp_path / "stage")
    assert not marker.exists()
    (published / "pytorch_model.bin").write_bytes(pickle.dumps([1, 2, 3])[:5])  # truncated
    with pytest.raises(ModelError, match="cannot read these PyTorch weights"):
        from_directory(published, tmp_path / "stage2")


def test_labels_are_renamed_on_request_and_the_config_says_so(tmp_path: Path) -> None:
    layout = next(s for s in SEEDS if s.name == "bertweet-emotion-base")
    published = write_seed(layout, tmp_path / "published")
    staged = from_directory(published, tmp_path / "stage")
    with pytest.raises(ModelError, match="names 2 labels, the model has 4 outputs"):
        manifest_for(staged, name="x", labels=["a", "b"])
    manifest = manifest_for(staged, name="x", labels=["anger", "joy", "optimism", "sadness"])
    assert manifest.labels == ["anger", "joy", "optimism", "sadness"]
    assert manifest.source is not None and manifest.source.labels == ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"]
    config = json.loads((staged.path / "config.json").read_text(encoding="utf-8"))
    assert config["id2label"] == {"0": "anger", "1": "joy", "2": "optimism", "3": "sadness"}
    model = load_version(staged.path, manifest, 0, device="cpu", dtype="float32", backend="torch")
    assert model.labels == manifest.labels and model.max_length == 128  # RoBERTa: 130 positions, 2 reserved


def test_which_files_are_taken() -> None:
    both = ["config.json", "model.safetensors", "pytorch_model.bin", "vocab.txt", "tf_model.h5", "onnx/model.onnx"]
    assert choose_files(both, "m") == ["config.json", "model.safetensors", "vocab.txt"]
    shards = [
        "config.json",
        "tokenizer.json",
        "pytorch_model.bin.index.json",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "training_args.bin",
    ]
    assert choose_files(shards, "m") == [
        "config.json",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "pytorch_model.bin.index.json",
        "tokenizer.json",
    ]
    with pytest.raises(ModelError, match="no PyTorch weights"):
        choose_files(["config.json", "tf_model.h5", "vocab.txt"], "m")
    with pytest.raises(ModelError, match=r"no config\.json"):
        choose_files(["model.safetensors", "vocab.txt"], "m")
    with pytest.raises(ModelError, match="no tokenizer files"):
        choose_files(["config.json", "model.safetensors"], "m")


def test_a_model_that_needs_its_own_code_is_refused(tmp_path: Path) -> None:
    published = write_seed(SEEDS[0], tmp_path / "published")
    config = json.loads((published / "config.json").read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_x.XForSequenceClassification"}
    (published / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelError, match="never runs a model's code"):
        from_directory(published, tmp_path / "stage")


def test_thresholds_as_the_model_card_says(tmp_path: Path) -> None:
    multi, single = SEEDS[0], next(s for s in SEEDS if s.name == "distilbert-sst2")
    staged = from_directory(write_seed(multi, tmp_path / "multi"), tmp_path / "stage")
    assert manifest_for(staged, name="x").thresholds == {}  # 0.5 each
    assert manifest_for(staged, name="x", thresholds=0.3).thresholds == dict.fromkeys(multi.labels, 0.3)
    assert manifest_for(staged, name="x", thresholds={"Cheer": 0.7}).thresholds == {"Cheer": 0.7}
    with pytest.raises(ModelError, match="thresholds for unknown labels"):
        manifest_for(staged, name="x", thresholds={"Cheers": 0.7})
    staged = from_directory(write_seed(single, tmp_path / "single"), tmp_path / "stage2")
    with pytest.raises(ModelError, match="thresholds are for multi-label models"):
        manifest_for(staged, name="x", thresholds=0.3)
