"""Hostile input: every entry is classified or dead-lettered with a reason, and the worker never crashes.
In-process workers against a real redis-server, with the tiny model."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.model.runtime import LoadedModel
from worker.service.worker import Worker
from worker.tools.embedded import EmbeddedRedis
from worker.wire import MAX_DEAD_LETTER_FIELDS

from ..inprocess import make_worker, sample
from .conftest import DEAD, GROUP, INPUT, OUTPUT, assert_exactly_once, push, running, wait_finished


async def test_invalid_entries_are_dead_lettered_with_reasons(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel
) -> None:
    cases: dict[str, dict[Any, Any]] = {
        "missing field 'text'": {"user": "u", "channel": "c"},
        "empty or whitespace-only 'text'": {"text": ""},
        "empty or whitespace-only 'text' ": {"text": " \t\u3000\n"},
        "is not valid UTF-8": {"text": b"\xff\xfe\xfa ok", "user": "u"},
        "is not valid UTF-8 ": {"text": "fine", b"\xc3\x28": b"v"},
        "text too long: 2001 chars > max_text_chars 2000": {"text": "字" * 2001},
        "entry too large": {"text": "ok", "pad": "x" * 65_600},
        "text contains NUL": {"text": "a\x00b"},
    }
    good = [
        {"text": "好球！", "user": "u1", "channel": "c", "ts": "1:02", "id": "m1", "extra": "dropped"},
        {"text": "x" * 2000},
        {"text": "加油 " * 10, **{f"f{i}": "v" for i in range(5000)}},
    ]
    bad_ids = await push(redis_client, cases.values())
    good_ids = await push(redis_client, good)
    worker = make_worker(redis_server.url, tiny_repo, tiny_model)
    async with running(worker) as task:
        await wait_finished(redis_client, bad_ids + good_ids, task=task)
    dead = await assert_exactly_once(redis_client, bad_ids + good_ids)
    assert set(dead) == set(bad_ids)
    for (reason, original), entry_id in zip(cases.items(), bad_ids, strict=True):
        letter = dead[entry_id]
        assert reason.strip() in letter["error"], (reason, letter["error"])
        assert letter["deliveries"] == "1"
        if reason == "entry too large":  # kept, but each value cut to max_text_chars
            assert letter["text"] == "ok" and letter["pad"].startswith("x" * 2000) and len(letter["pad"]) < 2100
        else:
            for key, value in original.items():
                if isinstance(key, str) and isinstance(value, str):
                    assert letter[key] == value
    assert dead[bad_ids[3]]["text"] == "\\xff\\xfe\\xfa ok"  # undecodable bytes kept, escaped
    assert sample(worker, "livetopic_comments_total", outcome="dead_lettered") == len(bad_ids)
    assert sample(worker, "livetopic_comments_total", outcome="classified") == len(good_ids)


async def test_entry_with_thousands_of_fields_is_dead_lettered_not_fatal(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel
) -> None:
    """A dead letter copies the original fields into one XADD inside the publish script; Lua cannot unpack
    ~8,000 values, so copying all 5,000 fields used to crash the worker (and every worker after it)."""
    many = {f"k{i}": "v" for i in range(5000)}
    ids = await push(redis_client, [many, {"text": "加油"}])
    worker = make_worker(redis_server.url, tiny_repo, tiny_model)
    async with running(worker) as task:
        await wait_finished(redis_client, ids, task=task)
    dead = await assert_exactly_once(redis_client, ids)
    letter = dead[ids[0]]
    assert "missing field 'text'" in letter["error"]
    assert letter["dropped_fields"] == str(5000 - MAX_DEAD_LETTER_FIELDS) and letter["k0"] == "v"


async def test_entry_deleted_while_pending_is_dead_lettered(
    redis_server: EmbeddedRedis, redis_client: aioredis.Redis, tiny_repo: Path, tiny_model: LoadedModel
) -> None:
    ids = await push(redis_client, [{"text": "一"}, {"text": "二"}, {"text": "三"}])
    await redis_client.xreadgroup(GROUP, "crashed", {INPUT: ">"})  # a consumer that died holding them
    await redis_client.xdel(INPUT, ids[1])  # then the producer's MAXLEN trimmed one away
    worker = make_worker(redis_server.url, tiny_repo, tiny_model, claim_min_idle_ms=50)
    async with running(worker) as task:
        await wait_finished(redis_client, ids, task=task)
    dead = await assert_exactly_once(redis_client, ids)
    assert list(dead) == [ids[1]] and "deleted from the input stream" in dead[ids[1]]["error"]
    assert sample(worker, "livetopic_comments_total", outcome="dead_lettered") == 1


# --- property-based ------------------------------------------------------------------------------------
LIMITS = {"max_text_chars": 60, "max_entry_bytes": 600}  # small, so that examples reach them
KEYS = st.one_of(
    st.sampled_from(
        [
            b"text",
            b"user",
            b"channel",
            b"ts",
            b"id",
            b"source_id",
            b"error",
            b"deliveries",
            b"dropped_fields",
            b"",
            b"TEXT",
        ]
    ),
    st.binary(max_size=12),
)
TEXTS = st.one_of(
    st.text(max_size=80).map(str.encode),  # any Unicode, incl. NUL, controls, emoji, surrogate-free
    st.sampled_from([b"", b" ", b"\t\n", "\u3000".encode(), "加油！🔥".encode(), b"\xff", b"\xc3\x28", b"ok\x00"]),
    st.binary(max_size=80),
    st.integers(55, 65).map(lambda n: ("好" * n).encode()),  # around max_text_chars
    st.integers(150, 220).map(lambda n: b"a" * n),  # three of these pass max_entry_bytes
)
FIELD_MAPS = st.dictionaries(KEYS, TEXTS, min_size=1, max_size=6)


def expected_dead(fields: dict[bytes, bytes]) -> bool:
    """An oracle written from the contract, independent of parse_entry."""
    if sum(len(k) + len(v) for k, v in fields.items()) > LIMITS["max_entry_bytes"]:
        return True
    try:
        decoded = {k.decode("utf-8"): v.decode("utf-8") for k, v in fields.items()}
    except UnicodeDecodeError:
        return True
    text = decoded.get("text")
    return text is None or not text.strip() or len(text) > LIMITS["max_text_chars"] or "\x00" in text


class BackgroundWorker:
    """A worker running in its own thread and event loop, for the (synchronous) hypothesis test."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="worker-under-test", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.worker.run(self.stop))
        except BaseException as exc:  # reported by alive()
            self.error = exc
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def alive(self) -> bool:
        return self.thread.is_alive() and self.error is None

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # loop already closed: the worker ended by itself
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=60)


@pytest.fixture
def background_worker(
    redis_server: EmbeddedRedis, tiny_repo: Path, tiny_model: LoadedModel
) -> Iterator[tuple[BackgroundWorker, redis.Redis]]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.xgroup_create(INPUT, GROUP, id="0", mkstream=True)
    bg = BackgroundWorker(make_worker(redis_server.url, tiny_repo, tiny_model, max_wait_ms=1, block_ms=50, **LIMITS))
    bg.thread.start()
    try:
        yield bg, client
    finally:
        bg.close()
        client.close()
    assert bg.error is None, bg.error


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(FIELD_MAPS, min_size=1, max_size=5))
def test_any_entry_is_classified_or_dead_lettered(
    background_worker: tuple[BackgroundWorker, redis.Redis], batch: list[dict[bytes, bytes]]
) -> None:
    bg, client = background_worker
    ids = [client.xadd(INPUT, fields).decode() for fields in batch]  # type: ignore[arg-type]
    outcome: dict[str, list[str]] = {}
    for _ in range(400):
        assert bg.alive(), f"worker crashed: {bg.error!r}"
        outcome = {}
        for stream in (OUTPUT, DEAD):
            for _id, fields in client.xrange(stream):
                source = fields[b"source_id"].decode()
                if source in ids:
                    outcome.setdefault(source, []).append(stream)
        if len(outcome) == len(ids):
            break
        threading.Event().wait(0.025)
    assert set(outcome) == set(ids), "an entry was neither classified nor dead-lettered"
    for entry_id, fields in zip(ids, batch, strict=True):
        assert outcome[entry_id] == [DEAD if expected_dead(fields) else OUTPUT], (fields, outcome[entry_id])
    assert client.xpending(INPUT, GROUP)["pending"] == 0
