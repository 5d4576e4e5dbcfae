"""A plain Hugging Face directory's labels are read from its config.json once, by transformers' rule: the
manifest made up for it (locate_model) and the backends that do not load the network through transformers
(ONNX Runtime, null) agree with the torch backend, which does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from worker.model.backends.base import read_labels
from worker.model.load import locate_model


@pytest.mark.parametrize(
    "config",
    [
        {"id2label": {"1": "Game", "0": "Cheer"}},
        {"id2label": {"0": "Cheer", "1": "Game"}, "num_labels": 3},  # num_labels wins; the names go
        {"num_labels": 3},
        {"id2label": {}, "num_labels": 4},
        {},
    ],
    ids=["named", "disagreeing", "counted", "empty-names", "nothing"],
)
def test_every_reader_of_config_json_agrees_with_transformers(tmp_path: Path, config: dict[str, Any]) -> None:
    from transformers import AutoConfig

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", **config}), encoding="utf-8")
    truth = AutoConfig.from_pretrained(str(tmp_path))
    expected = [truth.id2label[i] for i in range(truth.num_labels)]
    _, manifest, number = locate_model(tmp_path)
    assert number == 0 and manifest.labels == expected
    count, id2label = read_labels(tmp_path)
    assert count == truth.num_labels and [id2label[i] for i in range(count)] == expected


def test_a_null_num_labels_is_as_if_absent(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"id2label": {"0": "a", "1": "b"}, "num_labels": null}', encoding="utf-8")
    assert locate_model(tmp_path)[1].labels == ["a", "b"] and read_labels(tmp_path) == (2, {0: "a", 1: "b"})
