"""Security basics: an ACL user and password in the Redis URL (never in the logs), TLS via rediss://,
metrics on 127.0.0.1 without comment text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from worker.model.runtime import LoadedModel
from worker.settings import Settings
from worker.tools.embedded import EmbeddedRedis

from ..inprocess import make_worker
from ..tlsredis import tls_redis_server
from .conftest import assert_exactly_once, push, running, wait_finished
from .harness import GROUP, INPUT, OUTPUT, wait_until

ADMIN_PASSWORD = "adm1n-Pa55-never-logged"
WORKER_PASSWORD = "w0rker-S3cret-never-logged"
MARKER = "這段留言只屬於輸出串流 4f1c"


def test_acl_user_password_in_url_never_logged(
    redis_server: EmbeddedRedis, tiny_repo: Path, start_worker: Callable[..., Any]
) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    admin.config_set("requirepass", ADMIN_PASSWORD)
    admin = redis.Redis.from_url(redis_server.url, password=ADMIN_PASSWORD)
    url = f"redis://livetopic-worker:{WORKER_PASSWORD}@127.0.0.1:{redis_server.port}/0"
    # The user does not exist yet: the worker must wait (not ready, not crashed) and retry.
    worker = start_worker(url, tiny_repo, wait=False)
    wait_until(lambda: "redis unreachable" in _readyz(worker), 90, "/readyz to report redis unreachable")
    assert worker.proc.poll() is None and worker.get("/healthz")[0] == 200
    admin.execute_command(
        "ACL", "SETUSER", "livetopic-worker", "on", f">{WORKER_PASSWORD}", "~livetopic:*", "+@all", "-@dangerous"
    )
    worker.wait_ready(timeout_s=30)
    admin.xadd(INPUT, {"text": MARKER, "user": "someone"})
    wait_until(lambda: admin.xlen(OUTPUT) == 1, 30, "the comment classified")
    assert admin.xpending(INPUT, GROUP)["pending"] == 0
    status, metrics = worker.get("/metrics")
    assert status == 200 and "livetopic_comments_total" in metrics
    assert MARKER not in metrics and "someone" not in metrics  # no comment text or user names
    assert worker.stop() == 0
    log = worker.log_path.read_text(errors="replace")
    assert "WRONGPASS" in log or "invalid username-password" in log  # the failure was logged...
    assert WORKER_PASSWORD not in log and ADMIN_PASSWORD not in log  # ...without the secret
    assert f"metrics on http://127.0.0.1:{worker.port}/metrics" in log


def test_metrics_bind_loopback_by_default() -> None:
    assert Settings.model_fields["metrics_host"].default == "127.0.0.1"


def _readyz(worker: Any) -> str:
    try:
        return worker.get("/readyz")[1]
    except OSError:
        return ""


# --- TLS ------------------------------------------------------------------------------------------------
@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(rediss:// URL with password and CA, CA file) of a TLS-only redis-server with a throwaway CA."""
    with tls_redis_server(tmp_path / "tls", ADMIN_PASSWORD) as server:
        yield server.url("", ADMIN_PASSWORD), server.ca


async def test_worker_over_tls(tls_redis: tuple[str, Path], tiny_repo: Path, tiny_model: LoadedModel) -> None:
    url, _ca = tls_redis
    client = aioredis.Redis.from_url(url)
    try:
        ids = await push(client, [{"text": "加油"}, {"text": "轉播卡住了"}, {"text": ""}])
        worker = make_worker(url, tiny_repo, tiny_model)
        async with running(worker) as task:
            await wait_finished(client, ids, task=task)
        dead = await assert_exactly_once(client, ids)
        assert list(dead) == [ids[2]]
        # Plain TCP to a TLS port does not work: TLS really is on.
        with pytest.raises(redis.RedisError):
            redis.Redis.from_url(url.replace("rediss://", "redis://").split("?")[0], socket_timeout=1).ping()
    finally:
        await client.aclose()
