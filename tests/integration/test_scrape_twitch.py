"""``livetopic scrape`` (a real process) against a local stand-in for a live Twitch chat (tests/faketwitch.py: IRC
and GraphQL on loopback; the lines from tests/twitchchat.py, sent when the test says), a real worker (an untrained
tiny model) and a real dashboard process: the messages are classified once each, a deletion and a ban land once
each as retractions on the output stream, and the dashboard's counts (its /api/view JSON) drop by the comments
they remove. Nothing reaches the network."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from worker.tools.embedded import EmbeddedRedis
from worker.tools.process import DashboardProcess

from ..cli.helpers import wait_for
from ..conftest import ROOT, worker_env
from ..faketwitch import FakeTwitch
from ..twitchchat import clearchat, clearmsg, privmsg
from .helpers import split_output

pytest.importorskip("chat_downloader", reason="the [scrape] extra is not installed")
pytestmark = pytest.mark.slow

CHANNEL = "somechannel"
N = 30
BANNED = ("7001", "viewer_1")  # wrote messages 1, 6, 11, 16, 21, 26
DELETED = "msg-003"  # viewer_3's


def messages(t0_ms: int) -> list[tuple[str, str]]:
    """(message id, IRC line) of N messages by five viewers."""
    out = []
    for i in range(N):
        mid, k = f"msg-{i:03d}", i % 5
        out.append((mid, privmsg(CHANNEL, mid, str(7000 + k), f"viewer_{k}", f"第{i}則 加油 好球", t0_ms + i)))
    return out


def view(dashboard: DashboardProcess) -> dict[str, Any]:
    status, body = dashboard.get(f"/api/view?channel={CHANNEL}&window=15m")
    assert status == 200, body
    return dict(json.loads(body))


def expected_counts(results: list[dict[str, str]]) -> dict[str, Any]:
    labels: Counter[str] = Counter()
    for fields in results:
        labels.update(json.loads(fields["labels"]))
    return {"comments": len(results), "labels": labels}


def until_view(dashboard: DashboardProcess, want: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        counts = view(dashboard)["counts"]
        got = {"comments": counts["comments"], "labels": Counter({k: v for k, v in counts["labels"].items() if v})}
        if got == want:
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"the dashboard shows {got}, not {want}")
        time.sleep(0.1)


def test_a_live_twitch_chat_scraped_classified_and_retracted(
    redis_server: EmbeddedRedis, tiny_repo: Path, start_worker: Any, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    worker = start_worker(redis_server.url, tiny_repo)
    chat = messages(int(time.time() * 1000))
    scrape_log = tmp_path / "scrape.log"
    with (
        FakeTwitch() as twitch,
        DashboardProcess(
            ["--redis-url", redis_server.url, "--update-interval-s", "0.1"],
            tmp_path / "dash.log",
            env=worker_env(),
            cwd=ROOT,
        ) as dashboard,
        open(scrape_log, "ab") as log,
    ):
        scraper = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker",
                "scrape",
                f"https://www.twitch.tv/{CHANNEL}",
                "--twitch-irc",
                twitch.irc,
                "--twitch-api",
                twitch.api,
                "--redis-url",
                redis_server.url,
                "--quiet",
            ],
            stdout=log,
            stderr=log,
            env=worker_env(),
            cwd=ROOT,
        )
        try:
            dashboard.wait_ready(60)
            twitch.wait_joined()
            twitch.send(*(line for _mid, line in chat))
            wait_for(lambda: client.xlen("livetopic:topics") >= N, 120, "every message classified")
            results, _ = split_output(client)
            until_view(dashboard, expected_counts(results))
            now = int(time.time() * 1000)
            twitch.send(clearmsg(CHANNEL, DELETED, "viewer_3", now), clearchat(CHANNEL, *BANNED, now + 1))
            wait_for(lambda: client.xlen("livetopic:topics") >= N + 2, 60, "both retractions published")
            scraper.send_signal(signal.SIGINT)
            assert scraper.wait(timeout=30) == 0, scrape_log.read_text("utf-8", "replace")[-3000:]
        finally:
            if scraper.poll() is None:
                scraper.kill()
                scraper.wait()
        wait_for(lambda: worker.metric("livetopic_pending_comments") == 0, 30, "the worker done")
        results, retractions = split_output(client)
        # exactly once: everything the scraper pushed is finished, each entry once
        assert client.xlen("livetopic:comments") == N + 2 == client.xlen("livetopic:topics")
        assert Counter(f["id"] for f in results) == Counter(mid for mid, _line in chat)
        assert client.xlen("livetopic:dead") == 0
        delete, ban = sorted(retractions, key=lambda f: f["action"], reverse=True)
        assert {k: delete[k] for k in ("kind", "action", "target_id", "channel")} == {
            "kind": "retract",
            "action": "delete",
            "target_id": DELETED,
            "channel": CHANNEL,
        }
        assert {k: ban[k] for k in ("action", "target_author_id", "target_user", "channel")} == {
            "action": "ban",
            "target_author_id": BANNED[0],
            "target_user": BANNED[1],
            "channel": CHANNEL,
        }
        pushed = dict(client.xrange("livetopic:comments"))
        assert {pushed[f["source_id"]]["kind"] for f in retractions} == {"retract"}
        # the dashboard's counts drop by the comments removed: the deleted one and the banned viewer's six
        kept = [f for f in results if f["id"] != DELETED and f["author_id"] != BANNED[0]]
        assert len(kept) == N - 1 - 6
        counts = until_view(dashboard, expected_counts(kept))
        assert view(dashboard)["health"]["retracted"] == 7 and counts["comments"] == 23
        assert worker.metric('livetopic_retractions_total{action="delete"}') == 1
        assert worker.metric('livetopic_retractions_total{action="ban"}') == 1
    summary = scrape_log.read_text("utf-8", "replace")
    assert f"pushed {N} comments and 2 retractions" in summary, summary[-3000:]
