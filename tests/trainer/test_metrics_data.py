"""trainer.metrics, trainer.data: hand-checked metrics, threshold tuning, readers, split, fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainer.data import CHAT_TOPICS, load_dataset, load_texts, split_games
from trainer.metrics import compute_metrics, roc_auc, tune_thresholds
from worker.errors import InputFileError
from worker.inputs import expand_paths


# --- metrics ------------------------------------------------------------------------------------------
def test_metrics_toy_case_by_hand() -> None:
    truth = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], dtype=bool)
    pred = np.array([[1, 0], [0, 1], [0, 1], [0, 1]], dtype=bool)
    m = compute_metrics(truth, pred, ["A", "B"])
    # A: tp 1 (row 0), fn 1 (row 1), fp 0 -> F1 = 2*1 / (2*1 + 0 + 1) = 2/3
    # B: tp 2 (rows 1, 3), fp 1 (row 2), fn 0 -> F1 = 4 / 5
    # micro: tp 3, fp 1, fn 1 -> 6 / 8; macro: (2/3 + 4/5) / 2; exact: rows 0 and 3 of 4
    assert m["per_label"]["A"]["f1"] == pytest.approx(2 / 3)
    assert m["per_label"]["B"]["f1"] == pytest.approx(0.8)
    assert m["per_label"]["A"]["precision"] == pytest.approx(1.0)
    assert m["per_label"]["A"]["recall"] == pytest.approx(0.5)
    assert m["per_label"]["B"]["precision"] == pytest.approx(2 / 3)
    assert m["micro_f1"] == pytest.approx(0.75)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m["exact_match"] == pytest.approx(0.5)
    assert m["n"] == 4
    assert m["per_label"]["A"]["support"] == 2 and m["per_label"]["B"]["predicted"] == 3


def test_roc_auc_by_hand() -> None:
    # positives 0.9 and 0.4, negatives 0.8 and 0.1: pairs won 0.9>0.8, 0.9>0.1, 0.4>0.1; lost 0.4<0.8 -> 3/4
    assert roc_auc(np.array([1, 0, 1, 0], dtype=bool), np.array([0.9, 0.8, 0.4, 0.1])) == pytest.approx(0.75)
    # a tie counts one half: positive 0.5 vs negatives 0.5 and 0.2 -> (0.5 + 1) / 2
    assert roc_auc(np.array([1, 0, 0], dtype=bool), np.array([0.5, 0.5, 0.2])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 0], dtype=bool), np.array([0.1, 0.2])) is None


def test_undefined_f1_is_left_out_of_macro() -> None:
    truth = np.array([[1, 0], [0, 0]], dtype=bool)
    pred = np.array([[1, 0], [0, 0]], dtype=bool)
    scores = np.array([[0.9, 0.1], [0.2, 0.3]])
    m = compute_metrics(truth, pred, ["A", "B"], scores, [0.5, 0.5])
    assert m["per_label"]["B"]["f1"] is None
    assert m["per_label"]["B"]["roc_auc"] is None
    assert m["per_label"]["A"]["roc_auc"] == pytest.approx(1.0)
    assert m["macro_f1"] == pytest.approx(1.0)
    assert m["per_label"]["A"]["threshold"] == 0.5
    json.dumps(m)  # JSON-safe: no NaN


def test_tune_thresholds_picks_best_f1_nearest_default() -> None:
    truth = np.array([[1, 0], [1, 0], [0, 0], [0, 0]], dtype=bool)
    scores = np.array([[0.30, 0.9], [0.35, 0.1], [0.20, 0.2], [0.10, 0.3]])
    thresholds = tune_thresholds(truth, scores)
    # any threshold in (0.20, 0.30] separates label 0 perfectly; 0.30 is the nearest to 0.5
    assert thresholds[0] == pytest.approx(0.30)
    assert thresholds[1] == pytest.approx(0.5)  # no positives: keeps the default
    # the tuned thresholds never do worse than 0.5 on the data they were tuned on
    base = compute_metrics(truth, scores >= 0.5, ["a", "b"])["micro_f1"] or 0.0
    tuned = compute_metrics(truth, scores >= thresholds, ["a", "b"])["micro_f1"]
    assert tuned is not None and tuned >= base


# --- readers ------------------------------------------------------------------------------------------
def _write_chat(path: Path, rows: list[tuple[str, float, float]]) -> None:
    records = [
        {"time": f"0:{i:02d}", "user": f"u{i}", "content": text, "甲": a, "乙": b, "positive": 0.9}
        for i, (text, a, b) in enumerate(rows)
    ]
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")


def test_chat_json_reader_soft_scores(tmp_path: Path) -> None:
    _write_chat(tmp_path / "G1.json", [("藍色小鳥飛", 0.9, 0.2), ("綠茶三杯", 0.4, 0.7)])
    data = load_dataset([tmp_path / "G1.json"])
    assert data.labels == ["甲", "乙"]  # time/user/content and sentiment are metadata
    assert data.texts == ["藍色小鳥飛", "綠茶三杯"]
    assert data.groups == ["G1", "G1"]
    assert data.hard.tolist() == [[True, False], [False, True]]
    assert data.is_soft


def test_csv_and_jsonl_readers(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text('text,Foo,Bar,user\n紙飛機,1,0,x\n"逗號, 在裡面",0,1,y\n', encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(
        '{"text": "木頭人", "Foo": 0, "Bar": 1, "game": "g7"}\n\n{"text": "雨傘", "Foo": true, "Bar": false}\n',
        encoding="utf-8",
    )
    data = load_dataset([tmp_path])  # a directory: both files, sorted
    assert data.labels == ["Foo", "Bar"]
    assert data.texts == ["紙飛機", "逗號, 在裡面", "木頭人", "雨傘"]
    assert data.groups == ["a", "a", "g7", "b"]  # the game field wins over the file name
    assert data.targets.tolist() == [[1, 0], [0, 1], [0, 1], [1, 0]]
    assert not data.is_soft
    only = load_dataset([tmp_path / "a.csv"], labels=["Bar"])
    assert only.labels == ["Bar"] and only.targets[:, 0].tolist() == [0, 1]


def test_derived_general_labels(tmp_path: Path) -> None:
    record = dict.fromkeys(CHAT_TOPICS, 0.1)
    record.update({"content": "跳跳糖", "加油": 0.8, "戰術": 0.3, "球隊": 0.7})
    (tmp_path / "G2.json").write_text(json.dumps([record], ensure_ascii=False), encoding="utf-8")
    data = load_dataset([tmp_path], ["Cheer", "Game", "Broadcast", "Chat"])
    assert data.targets[0].tolist() == pytest.approx([0.8, 0.7, 0.1, 0.1])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", "[{", "invalid JSON"),
        ("obj.json", '{\n  "text": "x"\n}', "a single JSON object"),
        ("bad.jsonl", '{"text": "x", "A": 1}\nnot json\n', "bad.jsonl:2"),
        ("range.csv", "text,A\nx,3\n", r"in \[0, 1\]"),
        ("word.csv", "text,A\nx,1\ny,maybe\n", "not a number"),
        ("notext.jsonl", '{"body": "x", "A": 1}\n', "no text"),
        ("nolabels.jsonl", '{"text": "x"}\n', "no label columns"),
        ("data.xml", "<x/>", "unsupported"),
    ],
)
def test_unreadable_inputs_raise_input_file_error(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputFileError, match=message):
        load_dataset([path])


def test_missing_and_binary_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        load_dataset([tmp_path / "absent.json"])
    with pytest.raises(InputFileError, match=r"no .* files"):
        load_dataset([tmp_path])
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputFileError, match="UTF-8"):
        load_dataset([tmp_path / "bin.jsonl"])
    (tmp_path / "x.jsonl").write_text('{"text": "x", "A": 1}\n', encoding="utf-8")
    with pytest.raises(InputFileError, match="no label column 'B'"):
        load_dataset([tmp_path / "x.jsonl"], ["B"])


def test_text_files_for_the_labeller(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("第一句\n\n第二句\n", encoding="utf-8")
    texts, groups = load_texts([tmp_path / "c.txt"])
    assert texts == ["第一句", "第二句"] and groups == ["c", "c"]


# --- split and fingerprint ----------------------------------------------------------------------------
def test_game_split_never_splits_a_game(tmp_path: Path) -> None:
    for g in range(12):
        _write_chat(tmp_path / f"G{g}.json", [(f"第{g}場第{i}句", 0.6, 0.1) for i in range(5 + g)])
    data = load_dataset([tmp_path])
    split = split_games(data.groups, val_fraction=0.25, test_fraction=0.25)
    assert len(split.test) == 3 and len(split.val) == 3 and len(split.train) == 6
    assert not (set(split.train) & set(split.val)) and not (set(split.val) & set(split.test))
    assert set(split.train) | set(split.val) | set(split.test) == set(data.groups)
    for games in (split.train, split.val, split.test):
        part = data.in_groups(games)
        for game in games:  # every row of a held-out game is in its part
            assert part.groups.count(game) == data.groups.count(game)
    # deterministic, and independent of the order of rows
    assert split_games(list(reversed(data.groups)), val_fraction=0.25, test_fraction=0.25) == split
    # the test games stay put when only the validation fraction changes
    assert split_games(data.groups, val_fraction=0.1, test_fraction=0.25).test == split.test
    explicit = split_games(data.groups, val_games=["G1"], test_games=["G2", "G3"])
    assert explicit.val == ["G1"] and explicit.test == ["G2", "G3"]
    with pytest.raises(InputFileError, match="not in the data"):
        split_games(data.groups, val_games=["G99"])


def test_split_with_few_games() -> None:
    assert split_games(["a"] * 5, val_fraction=0.2, test_fraction=0.2).train == ["a"]
    two = split_games(["a", "b"], val_fraction=0.1, test_fraction=0.2)
    assert len(two.val) == 1 and len(two.train) == 1 and two.test == []


def test_fingerprint_is_stable(tmp_path: Path) -> None:
    _write_chat(tmp_path / "G1.json", [("一", 0.9, 0.1)])
    _write_chat(tmp_path / "G2.json", [("二", 0.1, 0.9)])
    first = load_dataset([tmp_path]).fingerprint
    assert len(first) == 64
    assert load_dataset([tmp_path]).fingerprint == first
    assert load_dataset([tmp_path / "G2.json", tmp_path / "G1.json"]).fingerprint == first
    _write_chat(tmp_path / "G2.json", [("二", 0.1, 0.8)])
    assert load_dataset([tmp_path]).fingerprint != first


def test_expand_paths_skips_hidden_and_unsupported(tmp_path: Path) -> None:
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.json").write_text("[]", encoding="utf-8")
    (tmp_path / "notes.md").write_text("x", encoding="utf-8")
    (tmp_path / "a.jsonl").write_text("", encoding="utf-8")
    assert [f.group for f in expand_paths([tmp_path])] == ["a"]


# --- the real chat data (read at run time, never copied) ----------------------------------------------
def test_reads_shared_chat_with_eight_topics(tvl_chat_dir: Path) -> None:
    """tvl_chat_dir (tests/conftest.py) skips when ../shared/data/tvl19_chat is absent."""
    files = sorted(tvl_chat_dir.glob("*.json"))[:3]
    data = load_dataset(files)
    assert data.labels == list(CHAT_TOPICS)
    assert len(data) > 0 and data.targets.shape == (len(data), 8)
    assert set(data.groups) == {f.stem for f in files}
    assert data.is_soft and 0.0 < data.hard.mean() < 1.0
