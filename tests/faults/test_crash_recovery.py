"""Crash recovery with worker processes, the soak of soak.py scaled down for CI: two workers, one killed
with SIGKILL three times mid-stream while the other serves, redis-server restarted once, Redis at its memory
limit for a few seconds, the output key replaced by a string once (both workers stop with exit 2 and are
started again), and the consumer group destroyed while both workers are down with a backlog waiting (they are
started again with --group-start-id $ and serve the backlog from the resume mark). Entries the killed workers
held are reclaimed (XAUTOCLAIM after --claim-min-idle-ms) and every comment ends up in the output exactly once;
`livetopic push` rides out the restart and the memory limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from .soak import every_comment_once


@pytest.mark.slow
def test_kill9_three_times_and_redis_restart_every_comment_once(tmp_path: Path) -> None:
    summary = every_comment_once(400, tmp_path, rate=25, kills=3, restarts=1)
    kills = [e for e in summary["events"] if "kill" in e]
    assert len(kills) == 3 and any(e.get("redis_restart") for e in summary["events"])
    # The kills hit workers holding comments: those were reclaimed by the others, not lost.
    assert sum(e["pending_at_kill"] for e in kills) > 0 and summary["reclaimed"] > 0


@pytest.mark.slow
def test_out_of_memory_a_wrong_key_type_and_a_lost_group_every_comment_once(tmp_path: Path) -> None:
    summary = every_comment_once(300, tmp_path, rate=10, ooms=1, wrong_types=1, group_losses=1)
    assert any("out_of_memory_s" in e for e in summary["events"])
    lost = [e["group_destroyed_with_backlog"] for e in summary["events"] if "group_destroyed_with_backlog" in e]
    assert len(lost) == 1 and lost[0] > 0  # a backlog was waiting when the group went
    # two stopped with the reason (wrong key type), two stopped cleanly before the group was destroyed
    assert sorted(summary["retired_workers"].values()) == [0, 0, 2, 2]
    assert summary["memory_problems"] == []
