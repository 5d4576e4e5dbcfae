"""``livetopic demo`` from nothing: embedded Redis, a model trained on the bundled sample, a worker
process, the replay, the live table and the summary."""

from __future__ import annotations

import re
from pathlib import Path

from ..cli.helpers import livetopic
from ..conftest import ROOT


def test_demo_trains_serves_and_summarises(tmp_path: Path) -> None:
    proc = livetopic(
        "demo", "--workdir", str(tmp_path / "demo"), "--rate", "400", "--train-minutes", "1", timeout_s=280
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "model: published" in out and "worker: ready" in out
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/ ", out)
    n = len((ROOT / "worker" / "data" / "sample_chat.jsonl").read_text(encoding="utf-8").splitlines())
    match = re.search(r"summary: (\d+) comments classified", out)
    assert match and int(match.group(1)) == n
    assert re.search(r"latency: p50 \d+ ms, p99 \d+ ms", out)
    assert re.search(r"worker: ready \(pid \d+, metrics http://127\.0\.0\.1:\d+/metrics while the demo runs", out)
    assert f"worker: stopped (exit code 0) after counting {n} classified" in out  # no dead URL at the end
    assert "epoch" not in proc.stderr and "only one game" not in proc.stderr  # training chatter only with -v
    table = [line for line in out.splitlines() if re.search(r"(Cheer|Game|Broadcast|Chat|-)$", line)]
    assert len(table) >= n
    # a trained model: the topics are not all the same
    assert len({line.rsplit("  ", 1)[-1] for line in table}) > 2
