"""The demo's replay schedule: one game of the bundled sample at its own pace, compressed into about a minute
(so the dashboard's chart rises and falls), or a fixed rate when asked for. The schedule is computed, not slept."""

from __future__ import annotations

import pytest

from worker.inputs import Record, read_records
from worker.tools.demo import replay_schedule, sample_games, sample_path


def test_the_game_is_compressed_into_the_duration_keeping_its_shape() -> None:
    records = read_records([sample_path()])
    due, pace = replay_schedule(records, 60.0, None)
    assert len(due) == len(records) and due[0] == 0.0
    assert due == sorted(due) and due[-1] == pytest.approx(60.0, abs=0.5)
    assert "own pace" in pace
    # heat rises and falls: the busiest tenth of the minute holds half as much again as the quietest
    per_bucket = [sum(1 for d in due if i * 6 <= d < (i + 1) * 6) for i in range(10)]
    assert max(per_bucket) >= 1.5 * min(per_bucket)
    # the relative timing is the game's own: comment k is due at its share of the game's span
    offsets = [r.offset_s for r in records]
    assert offsets[0] is not None and offsets[-1] is not None
    span = offsets[-1] - offsets[0]
    k = len(records) // 2
    assert offsets[k] is not None
    assert due[k] == pytest.approx((offsets[k] - offsets[0]) / span * 60.0, abs=0.01)


def test_a_rate_replaces_the_game_timing() -> None:
    records = read_records([sample_path()])
    due, pace = replay_schedule(records, 60.0, 100.0)
    assert due[:3] == [0.0, 0.01, 0.02] and pace == "at 100/s"


def test_comments_without_times_are_spread_evenly_over_the_duration() -> None:
    records = [Record({"text": f"c{i}"}) for i in range(11)]
    due, pace = replay_schedule(records, 30.0, None)
    assert due[-1] == pytest.approx(30.0) and due[1] == pytest.approx(3.0) and "evenly" in pace


def test_the_demo_trains_on_several_games() -> None:
    games = {p.stem for p in sample_games().rglob("*.jsonl")}
    assert sample_path().stem in games and len(games) >= 5
