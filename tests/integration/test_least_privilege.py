"""The least-privilege Redis user that deploy/README.md documents is the one that works: a worker, ``push``,
``tail`` and the dashboard run as that ACL user, with exactly the rules the README lists, over TLS with a
self-signed CA given in the URL (``rediss://…?ssl_ca_certs=…``). Redis refuses nothing (its ACL LOG stays
empty) and every command granted is one that was used (INFO commandstats): the narrowest that works."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from worker.tools.process import DashboardProcess, WorkerProcess, child_env

from ..cli.helpers import livetopic
from ..conftest import ROOT, SAMPLE
from ..tlsredis import tls_redis_server

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "adm1n-only-for-the-test"
PASSWORD = "least-privilege-Pa55"
PUSHED = 40
PIPED = ['{"text": "加油加油", "id": "m1"}', '{"text": "好球", "id": "m2"}']  # a live source: the id window
# Granted for paths this run does not take, each where the code uses it (checked to be there).
ELSEWHERE = {
    "xclaim": ("worker/streams/scripts.py", "'XCLAIM'", "reclaiming the comments of a consumer that died"),
    "xgroup|setid": ("worker/streams/scripts.py", "'XGROUP', 'SETID'", "moving the group to its resume mark"),
    "zrangebyscore": ("worker/streams/scripts.py", "'ZRANGEBYSCORE'", "pruning the ledger of finished ids"),
    "zrem": ("worker/streams/scripts.py", "'ZREM'", "pruning the ledger of finished ids"),
    "xinfo|stream": ("worker/streams/producer.py", "xinfo_stream", "a producer whose ids clash with the stream's"),
}


def documented_rules() -> tuple[str, list[str]]:
    """(user, rules) of the ``ACL SETUSER`` line of deploy/README.md, its password placeholder filled in."""
    text = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("ACL SETUSER ")]
    assert len(lines) == 1, "deploy/README.md: expected one ACL SETUSER line"
    _, _, user, *rules = shlex.split(lines[0])
    return user, [f">{PASSWORD}" if rule == ">PASSWORD" else rule for rule in rules]


def granted(rules: list[str]) -> set[str]:
    return {rule[1:].lower() for rule in rules if rule.startswith("+") and not rule.startswith("+@")}


def used(admin: redis.Redis) -> set[str]:
    """Every command (and subcommand) the server ran since the stats were reset: cmdstat_xgroup|create…"""
    stats = admin.info("commandstats")
    return {name.removeprefix("cmdstat_").lower() for name, stat in stats.items() if stat["calls"]}


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 90, why: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s:.0f}s\n{why()}")
        time.sleep(0.2)


def shown(dashboard: DashboardProcess) -> int:
    """The comments the dashboard's view counts over all channels (the channel named "")."""
    channels = json.loads(dashboard.get("/api/view")[1])["channels"]
    return next((channel["total"] for channel in channels if channel["name"] == ""), 0)


def test_the_documented_acl_user_runs_everything_over_tls(tiny_repo: Path, tmp_path: Path) -> None:
    user, rules = documented_rules()
    with tls_redis_server(tmp_path / "tls", ADMIN_PASSWORD) as server:
        admin = redis.Redis.from_url(server.url("default", ADMIN_PASSWORD))
        admin.execute_command("ACL", "SETUSER", user, *rules)
        url = server.url(user, PASSWORD)
        as_user = child_env(threads=1, extra={"LIVETOPIC_REDIS_URL": url})  # not on the command line
        worker = WorkerProcess(
            ["--model-repo", str(tiny_repo), "--torch-threads", "1", "--group-start-id", "0"],
            tmp_path / "worker.log",
            env=as_user,
        )
        dashboard = DashboardProcess([], tmp_path / "dashboard.log", env=as_user)
        admin.config_resetstat()
        admin.execute_command("ACL", "LOG", "RESET")
        with worker, dashboard:
            worker.wait_ready(120)
            dashboard.wait_ready(60)
            pushed = livetopic("push", "--quiet", "--limit", str(PUSHED), str(SAMPLE), env=as_user)
            assert pushed.returncode == 0, pushed.stderr
            piped = livetopic("push", "--quiet", "-", input="\n".join(PIPED), env=as_user)
            assert piped.returncode == 0, piped.stderr
            total = PUSHED + len(PIPED)
            wait_for(
                lambda: worker.metric('livetopic_comments_total{outcome="classified"}') == total,
                "the worker classifies what push sent",
            )
            tail = livetopic("tail", "--last", "5", "--no-follow", "--json", env=as_user)
            assert tail.returncode == 0, tail.stderr
            assert len([json.loads(line) for line in tail.stdout.splitlines()]) == 5
            wait_for(
                lambda: shown(dashboard) == total,
                "the dashboard shows them",
                60,
                lambda: f"{dashboard.log_tail()}\n{admin.execute_command('ACL', 'LOG')}",
            )
            assert worker.stop() == 0
        refused = admin.execute_command("ACL", "LOG")
        assert refused == [], refused  # nothing any of them did was refused
        ran = used(admin)
        unused = granted(rules) - ran
        assert unused == set(ELSEWHERE), f"granted and never used: {sorted(unused)} (ran: {sorted(ran)})"
        for path, spelled, _why in ELSEWHERE.values():
            assert spelled in (ROOT / path).read_text(encoding="utf-8"), (path, spelled)
