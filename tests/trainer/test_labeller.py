"""trainer.labeller: the keyword rules on a made-up lexicon, and the ``label`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainer.labeller import LABELS, KeywordLabeller, Lexicon
from worker.errors import InputFileError

from ..cli.helpers import run_command


@pytest.fixture
def lexicon_dir(tmp_path: Path) -> Path:
    root = tmp_path / "lexicon"
    (root / "players").mkdir(parents=True)
    keywords = {
        "cheer_words": ["衝衝衝", "GoGo"],
        "tactic_words": ["快攻陣"],
        "coach_words": ["總舵手"],
        "stream_words": ["畫面卡", "  "],
        "judge_words": ["哨子哥"],
        "team_emoji": ["🐉"],
        "cheer_emoji": ["❤️"],
        "EPOCHS": 3,  # other keys are ignored
    }
    (root / "keywords.json").write_text(json.dumps(keywords, ensure_ascii=False), encoding="utf-8")
    (root / "teams.txt").write_text("飛魚隊\n\n山貓\n", encoding="utf-8")
    (root / "player_nicknames.txt").write_text("小鋼炮\n", encoding="utf-8")
    (root / "players" / "飛魚隊.txt").write_text("王大明\n李Lucky\n", encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("衝衝衝！", {"Cheer": 1, "Game": 0, "Broadcast": 0, "Chat": 0}),
        ("gogo 大家", {"Cheer": 1, "Game": 0, "Broadcast": 0, "Chat": 0}),  # case-insensitive
        ("愛心❤", {"Cheer": 1, "Game": 0, "Broadcast": 0, "Chat": 0}),  # variation selector ignored
        ("畫面卡住了", {"Cheer": 0, "Game": 0, "Broadcast": 1, "Chat": 0}),
        ("這個快攻陣不錯", {"Cheer": 0, "Game": 1, "Broadcast": 0, "Chat": 0}),
        ("總舵手喊暫停", {"Cheer": 0, "Game": 1, "Broadcast": 0, "Chat": 0}),
        ("哨子哥又來", {"Cheer": 0, "Game": 1, "Broadcast": 0, "Chat": 0}),
        ("🐉🐉", {"Cheer": 0, "Game": 1, "Broadcast": 0, "Chat": 0}),
        ("山貓今天", {"Cheer": 0, "Game": 1, "Broadcast": 0, "Chat": 0}),  # team name
        ("小鋼炮好猛", {"Cheer": 0, "Game": 1, "Broadcast": 0, "Chat": 0}),  # nickname
        ("李lucky發球", {"Cheer": 0, "Game": 1, "Broadcast": 0, "Chat": 0}),  # player list of a team
        ("飛魚隊衝衝衝 畫面卡", {"Cheer": 1, "Game": 1, "Broadcast": 1, "Chat": 0}),  # several at once
        ("晚餐吃什麼", {"Cheer": 0, "Game": 0, "Broadcast": 0, "Chat": 1}),  # none: chat
        ("", {"Cheer": 0, "Game": 0, "Broadcast": 0, "Chat": 1}),
    ],
)
def test_rules(lexicon_dir: Path, text: str, expected: dict[str, int]) -> None:
    labeller = KeywordLabeller.from_dir(lexicon_dir)
    assert labeller.label(text) == expected


def test_blank_entries_are_ignored(lexicon_dir: Path) -> None:
    lexicon = Lexicon.load(lexicon_dir)
    assert "" not in lexicon.broadcast and "" not in lexicon.game
    assert KeywordLabeller(lexicon).labels_of(["  "]).tolist() == [[False, False, False, True]]


def test_chat_is_exclusive(lexicon_dir: Path) -> None:
    rows = KeywordLabeller.from_dir(lexicon_dir).labels_of(["衝衝衝", "快攻陣", "隨便", "畫面卡"])
    assert np.array_equal(rows[:, 3], ~rows[:, :3].any(axis=1))


def test_bad_lexicon(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"keywords\.json"):
        Lexicon.load(tmp_path)
    (tmp_path / "keywords.json").write_text('{"cheer_words": "not a list"}', encoding="utf-8")
    with pytest.raises(InputFileError, match="cheer_words"):
        Lexicon.load(tmp_path)


def test_label_command_writes_jsonl(lexicon_dir: Path, tmp_path: Path) -> None:
    comments = tmp_path / "g5.txt"
    comments.write_text("衝衝衝\n晚餐吃什麼\n", encoding="utf-8")
    chat = tmp_path / "G6.json"
    chat.write_text(
        json.dumps([{"time": "0:01", "user": "u", "content": "畫面卡"}], ensure_ascii=False), encoding="utf-8"
    )
    out = tmp_path / "labelled.jsonl"
    assert run_command("label", "--lexicon", str(lexicon_dir), str(comments), str(chat), "--out", str(out)) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == ["衝衝衝", "晚餐吃什麼", "畫面卡"]
    assert [r["game"] for r in rows] == ["g5", "g5", "G6"]
    assert [[r[k] for k in LABELS] for r in rows] == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
