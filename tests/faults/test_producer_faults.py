"""``livetopic push`` under Redis's memory limit, on Redis 6.2 and 7: it rides out OOM while it can, gives up
with a clear message when it cannot, and run again on the same file it pushes only what had not landed."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

from ..cli.helpers import livetopic
from .conftest import INPUT, Server


def push(server: Server, path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return livetopic("push", str(path), "--redis-url", server.url, "--quiet", *flags, timeout_s=180)


def test_push_gives_up_cleanly_under_oom_and_a_rerun_pushes_nothing_twice(server: Server, tmp_path: Path) -> None:
    n = 5000
    path = tmp_path / "chat.jsonl"
    path.write_text(
        "".join(
            json.dumps({"text": f"第{i}則 加油 {'留言' * (i % 30)}", "user": f"u{i}"}, ensure_ascii=False) + "\n"
            for i in range(n)
        ),
        encoding="utf-8",
    )
    server.sync.xgroup_create(INPUT, "livetopic", id="$", mkstream=True)
    server.set_maxmemory(server.used_b() + 500_000)  # room for part of the file only
    failed = push(server, path, "--retry-s", "2")
    assert failed.returncode == 2, failed.stderr
    assert "livetopic: error:" in failed.stderr and "Traceback" not in failed.stderr
    assert "Redis is out of memory (maxmemory reached, writes refused)" in failed.stderr
    landed = server.sync.xlen(INPUT)
    assert 0 < landed < n

    # run again while Redis is still full; memory frees two seconds later: the push waits, then sends the rest
    freeing = threading.Timer(2.0, server.set_maxmemory, args=(0,))
    freeing.start()
    resumed = push(server, path, "--retry-s", "60")
    freeing.join()
    assert resumed.returncode == 0, resumed.stderr
    assert f"stopped after {landed} of {n} comments" in resumed.stderr
    texts = [fields[b"text"].decode() for _id, fields in server.sync.xrange(INPUT)]
    assert texts == [f"第{i}則 加油 {'留言' * (i % 30)}" for i in range(n)]  # each once, in order
    assert not server.sync.keys("*push:*")  # a complete push leaves no checkpoint behind

    again = push(server, path)  # an intentional second push of a complete file sends it all again
    assert again.returncode == 0 and server.sync.xlen(INPUT) == 2 * n
