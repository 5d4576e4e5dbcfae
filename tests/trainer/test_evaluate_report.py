"""``evaluate``'s report: per-label F1, precision, recall and support with the false positives and negatives
against the teacher, example comments where they disagree (cut to a width, CJK-aware), and the spread of each
label's best threshold across the games; in the table and in ``--json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trainer.data import Dataset
from trainer.evaluate import report
from trainer.metrics import threshold_spread
from worker.display import width

from ..cli.helpers import run_command
from .test_train_publish import LABELS, write_sample

LONG = "加油加油加油加油加油加油加油加油"  # 16 wide characters: 32 columns


def _rows(rows: list[tuple[str, float, float, str]]) -> Dataset:
    """(text, teacher's A, teacher's B, game) → a two-label dataset."""
    targets = np.array([[a, b] for _, a, b, _ in rows], dtype=np.float32)
    return Dataset([r[0] for r in rows], ["A", "B"], targets, [r[3] for r in rows])


def test_counts_and_the_widest_disagreements_first() -> None:
    rows = _rows(
        [
            (LONG, 0.9, 0.1, "g1"),  # A missed by a wide gap, B a false positive
            ("好球", 0.8, 0.0, "g1"),  # A right
            ("好球好球", 0.6, 0.4, "g2"),  # A missed by a narrow gap
            ("畫面停格", 0.1, 0.3, "g2"),  # B a false positive, twice the same text
            ("畫面停格", 0.1, 0.3, "g2"),
            ("lag", 0.0, 0.9, "g2"),  # B right
        ]
    )
    scores = np.array([[0.1, 0.95], [0.9, 0.1], [0.4, 0.2], [0.2, 0.6], [0.2, 0.6], [0.1, 0.9]])
    out = report(rows, scores, np.array([0.5, 0.5]), examples=5, example_width=10)
    a, b = out["per_label"]["A"], out["per_label"]["B"]
    assert (a["false_positives"], a["false_negatives"], a["support"]) == (0, 2, 3)
    assert (b["false_positives"], b["false_negatives"], b["support"]) == (3, 0, 1)
    assert a["recall"] == pytest.approx(1 / 3) and b["precision"] == pytest.approx(1 / 4)
    missed = out["disagreements"]["A"]["false_negatives"]
    assert [m["score"] for m in missed] == [0.1, 0.4]  # gap 0.8 before gap 0.2
    assert missed[0]["teacher"] == pytest.approx(0.9) and missed[0]["game"] == "g1"
    assert missed[0]["text"].endswith("…") and width(missed[0]["text"]) <= 10 and missed[0]["text"].startswith("加油")
    extra = out["disagreements"]["B"]["false_positives"]
    assert [e["text"] for e in extra] == ["加油加油…", "畫面停格"]  # the repeated comment once
    assert out["disagreements"]["A"]["false_positives"] == [] and out["disagreements"]["B"]["false_negatives"] == []
    few = report(rows, scores, np.array([0.5, 0.5]), examples=1)["disagreements"]
    assert [len(few[label][kind]) for label in "AB" for kind in few[label]] == [0, 1, 1, 0]


def test_threshold_spread_across_games() -> None:
    """Game 1 separates A at 0.3, game 2 at 0.7: their own best thresholds are far apart and each game loses F1
    at the one threshold the version has; B has too few positives in any game to count."""
    truth = np.array([[True, False]] * 5 + [[False, False]] * 5 + [[True, True]] * 5 + [[False, False]] * 5)
    a = [0.35] * 5 + [0.25] * 5 + [0.75] * 5 + [0.65] * 5
    scores = np.column_stack([a, np.full(20, 0.9)])
    games = ["g1"] * 10 + ["g2"] * 10
    spread_a, spread_b = threshold_spread(truth, scores, games, [0.5, 0.5], min_positives=6)
    assert spread_a == {"games": 0, "pooled": pytest.approx(0.35)}  # 5 positives a game: none counts
    spread_a, spread_b = threshold_spread(truth, scores, games, [0.5, 0.5])
    assert spread_a["games"] == 2
    assert (spread_a["min"], spread_a["max"]) == (pytest.approx(0.35), pytest.approx(0.66))
    assert spread_a["std"] == pytest.approx(0.155)
    assert spread_a["f1_gain"] == pytest.approx((1.0 + (1 - 2 / 3)) / 2)  # g1: 0 → 1; g2: 2/3 → 1
    assert spread_a["pooled"] == pytest.approx(0.35)
    assert spread_b["games"] == 1 and spread_b["f1_gain"] == 0.0


def _evaluate(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert run_command("evaluate", *argv) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The made-up sample with a teacher that errs now and then (a label flipped on every 5th and 7th comment),
    so that even a good scorer disagrees with it."""
    root = write_sample(tmp_path_factory.mktemp("report") / "data", games=5, per_game=60)
    for path in sorted(root.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for i, row in enumerate(rows):
            for label, every in (("Chat", 5), ("Cheer", 7)):
                if i % every == 0:
                    row[label] = 1 - row[label]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return root


def _consistent(result: dict[str, Any], examples: int) -> None:
    """Counts that add up, and examples on the right side of the threshold and of the teacher's 0.5."""
    for label, m in result["per_label"].items():
        assert m["predicted"] == m["support"] - m["false_negatives"] + m["false_positives"]
        found = result["disagreements"][label]
        assert len(found["false_positives"]) == min(examples, m["false_positives"])
        assert len(found["false_negatives"]) <= min(examples, m["false_negatives"])
        threshold = m.get("threshold", 0.5)
        assert all(e["score"] >= threshold - 1e-4 and e["teacher"] <= 0.5 for e in found["false_positives"])
        assert all(e["score"] < threshold + 1e-4 and e["teacher"] > 0.5 for e in found["false_negatives"])


def test_baseline_json_and_table(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("--baseline", "tfidf", "--data", str(data), "--split", "all", "--examples", "2")
    result = json.loads(_evaluate(capsys, *argv, "--json"))
    assert set(result["disagreements"]) == set(LABELS)
    _consistent(result, 2)
    assert sum(m["false_positives"] + m["false_negatives"] for m in result["per_label"].values()) > 0
    for m in result["per_label"].values():
        assert m["threshold_spread"]["games"] >= 1 and 0.05 <= m["threshold_spread"]["min"] <= 0.95
    table = _evaluate(capsys, *argv, "--example-width", "12").splitlines()
    header = next(line for line in table if line.startswith("label") and " fp " in line)
    assert header.split()[-3:] == ["fp", "fn", "thr"]
    assert any(line.startswith("each label's best threshold") for line in table)
    start = table.index(next(line for line in table if line.startswith("where it and the teacher disagree")))
    shown = [line for line in table[start:] if line.startswith("  false ")]
    assert shown and all(width(line.split("  ")[-1]) <= 12 for line in shown)
    for label in LABELS:
        m = result["per_label"][label]
        assert f"{label}: {m['false_positives']} false positives, {m['false_negatives']} false negatives" in table


def test_a_model_version_and_the_labeller(
    data: Path, tiny_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("--model", str(tiny_repo), "--data", str(data), "--dtype", "float32", "--json")
    model = json.loads(_evaluate(capsys, *argv))
    assert model["source"] == "model" and set(model["disagreements"]) == set(LABELS)
    _consistent(model, 3)
    assert all("threshold_spread" in m for m in model["per_label"].values())
    lexicon = tmp_path / "lexicon"
    lexicon.mkdir()
    words = {"cheer_words": ["衝呀"], "stream_words": ["畫面"], "tactic_words": ["扣殺"]}
    (lexicon / "keywords.json").write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
    labelled = json.loads(_evaluate(capsys, "--labeller", str(lexicon), "--data", str(data), "--json"))
    _consistent(labelled, 3)
    assert not any("threshold_spread" in m for m in labelled["per_label"].values())  # 0/1 rules: no thresholds
    quiet = json.loads(_evaluate(capsys, "--labeller", str(lexicon), "--data", str(data), "--json", "--examples", "0"))
    assert all(kinds == {"false_positives": [], "false_negatives": []} for kinds in quiet["disagreements"].values())
