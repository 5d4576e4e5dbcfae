"""The worker's lifecycle: start, run the pipeline, drain, stop.

Pipeline (each stage one task, bounded queues between them, every task kept and supervised)::

    read (XREADGROUP / XAUTOCLAIM) ─► encode (tokenizer thread) ─► batcher ─► prepare (tokenizer thread)
        ─► infer (model thread) ─► publish (ack+XADD script)

Signal handlers are not installed here: the entry point sets ``stop`` (and calls :meth:`Worker.poke_reload`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from redis.exceptions import ResponseError

from .batcher import MicroBatcher
from .device import set_torch_threads
from .http import HttpServer
from .messages import Comment, Limits, Rejection
from .metrics import Metrics
from .model import LoadedModel, load_model
from .pipeline import Classifier, Finished, publishable
from .reload import ModelWatcher
from .retry import Backoff, is_transient, sleep_or_stop
from .settings import Settings
from .streams import RawEntry, StreamClient, connect

__all__ = ["Worker"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Worker:
    def __init__(self, settings: Settings, redis_url: str, *, metrics: Metrics | None = None,
                 model: LoadedModel | None = None) -> None:
        s = self.settings = settings
        self.metrics = metrics or Metrics()
        self.registry = self.metrics.registry
        self.model = model
        self.redis = connect(redis_url, timeout_s=s.redis_timeout_s)
        self.streams = StreamClient(self.redis, input_stream=s.input_stream, output_stream=s.output_stream,
                                    dead_stream=s.dead_letter_stream, group=s.group, consumer=s.consumer,
                                    output_maxlen=s.output_maxlen, dead_maxlen=s.dead_letter_maxlen)
        self.limits = Limits(s.max_text_chars, s.max_entry_bytes)
        self.tokenizer_pool = ThreadPoolExecutor(1, thread_name_prefix="livetopic-tokenize")
        self.model_pool = ThreadPoolExecutor(1, thread_name_prefix="livetopic-model")
        self.reload_pool = ThreadPoolExecutor(1, thread_name_prefix="livetopic-reload")
        self.batcher: MicroBatcher[Comment] = MicroBatcher(
            max_items=s.max_batch_size, max_tokens=s.max_batch_tokens, max_wait_s=s.max_wait_ms / 1000,
            cost=lambda c: len(c.ids))
        self.classifier = Classifier(self, self.metrics)
        self.http = HttpServer(self, s.metrics_host, s.metrics_port)
        self.watcher = ModelWatcher(s.model_repo, current=lambda: self.model, swap=self._swap,
                                    executor=self.reload_pool, metrics=self.metrics,
                                    interval_s=s.reload_interval_s, device=s.device, dtype=s.dtype,
                                    compile=s.compile)
        self._in_hand: set[str] = set()
        self._capacity = asyncio.Condition()
        # Read turns (see _may_read): whether the model waits for a batch.
        self._read_turn = asyncio.Condition()
        self._model_idle = False
        self._publish_q: asyncio.Queue[list[Finished] | None] = asyncio.Queue(maxsize=4)
        self._redis_ok = False
        self._stopping = False
        self.stop_reading = asyncio.Event()

    # --- state ------------------------------------------------------------------------------------
    @property
    def inflight(self) -> int:
        return len(self._in_hand)

    def readiness(self) -> tuple[bool, str]:
        if self.model is None:
            return False, "model not loaded"
        if not self._redis_ok:
            return False, "redis unreachable"
        if self._stopping:
            return False, "shutting down"
        return True, "ok"

    def _set_redis_ok(self, ok: bool) -> None:
        self._redis_ok = ok
        ready, _ = self.readiness()
        self.metrics.ready.set(1 if ready else 0)

    def _swap(self, model: LoadedModel) -> None:
        # Called on the event loop; the batch loop reads self.model once per batch, so a swap lands
        # between batches and every batch is encoded and scored by one model.
        self.model = model
        self.metrics.set_model(model.name, model.version, model.device, model.dtype_name)

    def poke_reload(self) -> None:
        self.watcher.poke()

    async def run_in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, fn, *args)

    async def redis_call(self, what: str, coro_fn: Callable[..., Awaitable[T]], *args: object,
                         stop: asyncio.Event | None = None) -> T:
        """Run a Redis call, retrying transient faults with back-off until it succeeds (or ``stop``)."""
        backoff = Backoff()
        while True:
            try:
                result = await coro_fn(*args)
            except Exception as exc:
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    log.warning("consumer group missing (Redis restarted without data?); recreating it")
                    await self.streams.ensure_group(self.settings.group_start_id)
                    continue
                if not is_transient(exc):
                    raise
                self.metrics.redis_errors.inc()
                self._set_redis_ok(False)
                delay = next(backoff)
                log.warning("redis %s failed (%s: %s); retry %d in %.2fs", what, type(exc).__name__, exc,
                            backoff.attempt, delay)
                if stop is not None and await sleep_or_stop(delay, stop):
                    raise asyncio.CancelledError from exc
                if stop is None:
                    await asyncio.sleep(delay)
                continue
            if not self._redis_ok:
                self._set_redis_ok(True)
            return result

    # --- lifecycle --------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then drain within ``shutdown_grace_s``."""
        s = self.settings
        port = await self.http.start()
        log.info("metrics on http://%s:%d/metrics", s.metrics_host, port)
        try:
            set_torch_threads(s.torch_threads)  # --torch-threads (None: torch's default)
            if self.model is None:
                load = functools.partial(load_model, s.model_repo, s.model_version, device=s.device, dtype=s.dtype,
                                         compile=s.compile)
                self.model = await self.run_in(self.model_pool, load)
            assert self.model is not None
            # What is loaded now (libraries, the model) lives as long as the process: keep it out of the cyclic
            # garbage collector's full passes, which otherwise stall the worker now and then (~200 ms with
            # bert-base: 400k objects). Models hold no reference cycles, so a reloaded model's predecessor is
            # still freed (by reference counting) when its last batch is done.
            gc.collect()
            gc.freeze()
            self.metrics.set_model(self.model.name, self.model.version, self.model.device, self.model.dtype_name)
            created = await self.redis_call("create group", self.streams.ensure_group, s.group_start_id, stop=stop)
            log.info("consumer %s in group %s on %s (%s)", s.consumer, s.group, s.input_stream,
                     "group created" if created else "group exists")
            await self._serve(stop)
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
        finally:
            await self.http.stop()
            with contextlib.suppress(Exception):
                await self.redis.aclose()
            for pool in (self.tokenizer_pool, self.model_pool, self.reload_pool):
                pool.shutdown(wait=False, cancel_futures=True)

    async def _serve(self, stop: asyncio.Event) -> None:
        s = self.settings
        readers = [asyncio.create_task(self._read_loop(), name="read"),
                   asyncio.create_task(self._reclaim_loop(), name="reclaim")]
        if s.model_version is None:
            readers.append(asyncio.create_task(self.watcher.run(self.stop_reading), name="reload"))
        stages = [asyncio.create_task(self._batch_loop(), name="batch"),
                  asyncio.create_task(self.classifier.run(), name="infer"),
                  asyncio.create_task(self._publish_loop(), name="publish")]
        stopper = asyncio.create_task(stop.wait(), name="stop")
        tasks = [*readers, *stages]
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in done if t is not stopper and not t.cancelled() and t.exception()]
        # Stop reading; let what was read drain through the pipeline within the grace period.
        self._stopping = True
        self.metrics.ready.set(0)
        self.stop_reading.set()
        async with self._capacity:  # a reader waiting for room re-checks stop_reading
            self._capacity.notify_all()
        await self._notify_read_turn()  # and one waiting for its turn
        await asyncio.gather(*readers, return_exceptions=True)
        self.batcher.close()
        if not failed:
            log.info("draining %d in-flight comments (grace %.1fs)", self.inflight, s.shutdown_grace_s)
            _, late = await asyncio.wait(stages, timeout=s.shutdown_grace_s)
            if late:
                log.warning("grace period over: %d comments left unacked (others will reclaim them)",
                            self.inflight)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, stopper, return_exceptions=True)
        stopper.cancel()
        errors = [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
        if errors:
            raise errors[0]

    # --- read side --------------------------------------------------------------------------------
    async def _wait_capacity(self) -> int:
        async with self._capacity:
            await self._capacity.wait_for(lambda: self.inflight < self.settings.max_inflight
                                          or self.stop_reading.is_set())
        return self.settings.max_inflight - self.inflight

    async def _release(self, ids: list[str]) -> None:
        for entry_id in ids:
            self._in_hand.discard(entry_id)
        self.metrics.pending.set(self.inflight)
        async with self._capacity:
            self._capacity.notify_all()

    async def _read_loop(self) -> None:
        s = self.settings
        # First what this consumer name already holds (a restart with a fixed name), then new entries.
        after = "0"
        while not self.stop_reading.is_set():
            await self._wait_capacity()
            entries = await self.redis_call("read pending", self.streams.read_own_pending, s.read_count,
                                            after, stop=self.stop_reading)
            entries = [e for e in entries if e[0] not in self._in_hand]
            if not entries:
                break
            after = entries[-1][0]
            counts = await self.redis_call("xpending", self.streams.delivery_counts, [e[0] for e in entries],
                                           stop=self.stop_reading)
            await self.admit(entries, counts)
        while not self.stop_reading.is_set():
            room = await self._wait_capacity()
            await self._wait_read_turn()
            if self.stop_reading.is_set():
                break
            entries = await self.redis_call("read", self.streams.read_new, min(room, s.read_count), s.block_ms,
                                            stop=self.stop_reading)
            if entries:
                await self.admit(entries, {})

    def _may_read(self) -> bool:
        """Take new entries only when this worker can start on them soon: while its model waits for a batch,
        or while nothing is queued for the model. Otherwise new entries stay in Redis for whichever consumer
        of the group frees up first (queued here, they would wait for this model while another one idles);
        when this model frees up, the batch loop tops its batch up from Redis (:meth:`_top_up`)."""
        return self._model_idle or len(self.batcher) == 0 or self.stop_reading.is_set()

    async def _wait_read_turn(self) -> None:
        async with self._read_turn:
            await self._read_turn.wait_for(self._may_read)

    async def _notify_read_turn(self) -> None:
        async with self._read_turn:
            self._read_turn.notify_all()

    async def _top_up(self) -> None:
        """The model is free and the read loop holds back (comments are queued): take what waits in Redis
        now (no blocking, one try; on a Redis error the read loop gets those entries later) so that it joins
        the next batch."""
        room = self.settings.max_inflight - self.inflight
        if room <= 0 or self.stop_reading.is_set():
            return
        try:
            entries = await self.streams.read_new(min(room, self.settings.read_count), None)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.debug("top-up read failed (%s: %s); the read loop will retry", type(exc).__name__, exc)
            return
        if entries:
            await self.admit(entries, {})

    async def _reclaim_loop(self) -> None:
        s = self.settings
        while not self.stop_reading.is_set():
            cursor = "0-0"
            while not self.stop_reading.is_set():
                room = await self._wait_capacity()
                if self.stop_reading.is_set():
                    return
                cursor, claimed, counts, deleted = await self.redis_call(
                    "autoclaim", self.streams.autoclaim, s.claim_min_idle_ms, cursor, min(room, s.read_count),
                    stop=self.stop_reading)
                if deleted:  # dead-lettered and acked by the claim script itself
                    self.metrics.comments.labels(outcome="dead_lettered").inc(len(deleted))
                    log.warning("dead-lettered %d pending entries deleted from the input stream", len(deleted))
                claimed = [e for e in claimed if e[0] not in self._in_hand]
                if claimed:
                    self.metrics.reclaimed.inc(len(claimed))
                    log.info("reclaimed %d entries idle > %d ms", len(claimed), s.claim_min_idle_ms)
                    await self.admit(claimed, counts)
                if cursor in ("0-0", "0"):
                    break
            if await sleep_or_stop(s.claim_interval_s, self.stop_reading):
                return

    async def _hold(self, ids: list[str]) -> None:
        self._in_hand.update(ids)
        self.metrics.pending.set(self.inflight)

    async def admit(self, entries: list[RawEntry], deliveries: dict[str, int]) -> None:
        """Parse, dead-letter what is invalid or delivered too often, encode and queue the rest."""
        s = self.settings
        await self._hold([entry_id for entry_id, _ in entries])
        rejected: list[Finished] = []
        comments: list[Comment] = []
        for entry_id, fields in entries:
            count = deliveries.get(entry_id, 1)
            parsed = self.classifier.parse(entry_id, fields, count)
            if isinstance(parsed, Comment) and count > s.max_deliveries:
                parsed = Rejection(entry_id, f"delivered {count} times (max_deliveries {s.max_deliveries}); "
                                   "its consumers crashed or timed out", dict(parsed.passthrough,
                                                                               text=parsed.text), count)
            if isinstance(parsed, Rejection):
                rejected.append(Finished.rejected(parsed))
            else:
                comments.append(parsed)
        if rejected:
            await self._publish_q.put(rejected)
        if comments:
            encoded, failures = await self.classifier.encode(comments)
            if failures:
                await self._publish_q.put(failures)
            for comment in encoded:
                self.batcher.put(comment)

    # --- processing side --------------------------------------------------------------------------
    async def _batch_loop(self) -> None:
        while True:
            await self.classifier.slots.acquire()
            if not self._may_read() and len(self.batcher) < self.settings.max_batch_size:
                await self._top_up()  # the read loop holds back: fill the batch from Redis now
            self._model_idle = True
            await self._notify_read_turn()
            batch = await self.batcher.next_batch()
            self._model_idle = False
            await self._notify_read_turn()  # the queue may be empty now
            if not batch:
                self.classifier.slots.release()
                break
            await self.classifier.submit(batch)
        await self.classifier.submit(None)

    async def _publish_loop(self) -> None:
        while True:
            finished = await self._publish_q.get()
            if finished is None:
                return
            records, meta = publishable(finished)
            flags = await self.redis_call("publish", self.streams.publish, records)
            self.classifier.account(meta, flags, now_s=time.time())
            await self._release([r.entry_id for r in records])

    async def publish(self, finished: list[Finished] | None) -> None:
        await self._publish_q.put(finished)
