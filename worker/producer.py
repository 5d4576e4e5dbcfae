"""Producers: read comments from JSONL, CSV, plain text or the chat-log JSON format, and XADD them.

Pushing is exactly-once across Redis restarts: entries carry ids chosen by the producer and go out in
MULTI/EXEC chunks, so after a connection fault the producer can tell which entries landed (look up
their ids and compare the fields) before sending the rest again.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from .errors import InputFileError
from .retry import TRANSIENT_REDIS_ERRORS, Backoff

__all__ = ["Record", "StreamProducer", "parse_offset", "read_records"]

log = logging.getLogger(__name__)
SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".txt")
_KEEP = ("text", "channel", "user", "ts", "id")


@dataclass(slots=True)
class Record:
    fields: dict[str, str]
    offset_s: float | None = None  # position in the original broadcast, for --speed replays


def parse_offset(value: str) -> float | None:
    """'M:SS', 'MM:SS' or 'H:MM:SS' → seconds; None when it is not such a time."""
    parts = value.strip().split(":")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds


def _from_object(obj: Any, where: str) -> Record:
    if not isinstance(obj, dict):
        raise InputFileError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    text = obj.get("text", obj.get("content"))
    if text is None:
        raise InputFileError(f"{where}: object has neither 'text' nor 'content'")
    fields = {"text": str(text)}
    for key in _KEEP[1:]:
        if obj.get(key) not in (None, ""):
            fields[key] = str(obj[key])
    if "ts" not in fields and obj.get("time") not in (None, ""):
        fields["ts"] = str(obj["time"])
    return Record(fields, parse_offset(fields.get("ts", "")))


def _read_file(path: Path) -> Iterator[Record]:
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            with path.open(encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        yield _from_object(json.loads(line), f"{path}:{n}")
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise InputFileError(f"{path}: expected a JSON list of comment objects")
            for n, obj in enumerate(data):
                yield _from_object(obj, f"{path}[{n}]")
        elif suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh)
                if not reader.fieldnames or "text" not in reader.fieldnames:
                    raise InputFileError(f"{path}: CSV needs a 'text' column (has {reader.fieldnames})")
                for row in reader:
                    yield _from_object(row, str(path))
        else:
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        yield Record({"text": line.rstrip("\r\n")})
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path}: invalid JSON: {exc}") from exc
    except csv.Error as exc:
        raise InputFileError(f"{path}: invalid CSV: {exc}") from exc


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given; directories expand to their supported files, sorted."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file()))
        elif path.exists():
            out.append(path)
        else:
            raise InputFileError(f"{path}: no such file or directory")
    return out


def read_records(paths: Iterable[Path | str], *, channel: str | None = None, limit: int | None = None) -> list[Record]:
    """All records of ``paths`` in order (each file's own order), at most ``limit``."""
    records: list[Record] = []
    for path in expand_paths(paths):
        for record in _read_file(path):
            if channel and "channel" not in record.fields:
                record.fields["channel"] = channel
            records.append(record)
            if limit is not None and len(records) >= limit:
                return records
    return records


def _parse_id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class StreamProducer:
    """XADD with producer-chosen, increasing ids, in MULTI/EXEC chunks, riding out Redis faults."""

    def __init__(self, redis: aioredis.Redis, stream: str, *, maxlen: int | None = None,
                 max_retry_s: float = 120.0) -> None:
        self.redis, self.stream, self.maxlen, self.max_retry_s = redis, stream, maxlen, max_retry_s
        self._last = (0, 0)

    def _next_id(self) -> str:
        ms = max(int(time.time() * 1000), self._last[0])
        seq = self._last[1] + 1 if ms == self._last[0] else 0
        self._last = (ms, seq)
        return f"{ms}-{seq}"

    async def _sync_top(self) -> None:
        try:
            info = await self.redis.xinfo_stream(self.stream)
        except ResponseError:
            return  # no such stream yet
        self._last = max(self._last, _parse_id(info["last-generated-id"]))

    async def ensure_group(self, group: str) -> None:
        """Create ``group`` at ``$`` before pushing, so a worker started later misses nothing."""
        backoff = Backoff(base_s=0.1, cap_s=5.0)
        started = time.monotonic()
        while True:
            try:
                await self.redis.xgroup_create(self.stream, group, id="$", mkstream=True)
                return
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
                return
            except TRANSIENT_REDIS_ERRORS as exc:
                await self._pause(exc, started, backoff)

    async def _pause(self, exc: BaseException, started: float, backoff: Backoff) -> None:
        """Back off after a transient Redis fault; give up (re-raise) once ``max_retry_s`` is spent."""
        if time.monotonic() - started > self.max_retry_s:
            raise exc
        delay = next(backoff)
        log.warning("push: redis unavailable (%s); retrying in %.1fs", exc, delay)
        await asyncio.sleep(delay)

    async def _missing(self, chunk: list[dict[str, str]], ids: list[str], todo: list[int]) -> list[int]:
        """Of ``todo``, the records not in the stream under their id with their own fields."""
        lo, hi = min((ids[i] for i in todo), key=_parse_id), max((ids[i] for i in todo), key=_parse_id)
        rows: Any = await self.redis.xrange(self.stream, lo, hi)
        found = {_parse_id(k): v for k, v in rows}
        return [i for i in todo
                if found.get(_parse_id(ids[i])) != {k.encode(): v.encode() for k, v in chunk[i].items()}]

    async def add(self, chunk: list[dict[str, str]]) -> list[str]:
        """Add ``chunk`` exactly once; returns the entry ids."""
        backoff = Backoff(base_s=0.1, cap_s=5.0)
        started = time.monotonic()
        ids = [self._next_id() for _ in chunk]
        todo = list(range(len(chunk)))
        uncertain = False  # a fault hid whether the last attempt landed
        while todo:
            try:
                if uncertain:
                    todo = await self._missing(chunk, ids, todo)
                    uncertain = False
                    if not todo:
                        break
                pipe = self.redis.pipeline(transaction=True)
                for i in todo:
                    pipe.xadd(self.stream, chunk[i], id=ids[i], maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
                replies = await pipe.execute(raise_on_error=False)
                failed = [i for i, reply in zip(todo, replies, strict=True) if isinstance(reply, Exception)]
                if failed and not all("equal or smaller" in str(replies[todo.index(i)]) for i in failed):
                    raise replies[todo.index(failed[0])]
                if failed:  # the id is taken: by an earlier attempt of ours, or by another producer
                    failed = await self._missing(chunk, ids, failed)
                    if failed:
                        await self._sync_top()
                        for i in failed:
                            ids[i] = self._next_id()
                todo = failed
            except TRANSIENT_REDIS_ERRORS as exc:
                await self._pause(exc, started, backoff)
                uncertain = True
        return ids
