"""The worker's lifecycle: start, serve, drain, stop.

::

    Reader (XREADGROUP / XAUTOCLAIM) ─► admit: parse, dead-letter the invalid, encode (tokenizer thread)
        ─► MicroBatcher ─► batch loop: Scorer (prepare, then the model thread) ─► Publisher (ack + XADD script)

Each arrow is one kept task; every task's exception is surfaced by :meth:`Worker.run`. Signal handlers are not
installed here: the entry point sets ``stop`` (and calls :meth:`Worker.poke_reload`).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from ..errors import GroupMissingError, RedisError, RedisOutOfMemoryError
from ..model.precision import set_torch_threads
from ..model.runtime import LoadedModel
from ..settings import Settings
from ..streams.client import RawEntry, StreamClient, connect
from ..streams.group import GroupState
from ..streams.info import stream_stats
from ..streams.retry import Retrying
from ..wire import Comment, Limits, Rejection, parse_entry
from .batcher import MicroBatcher
from .http import HttpServer
from .metrics import Metrics
from .publisher import Publisher
from .reader import InHand, Reader, ReadTurn
from .reload import ModelWatcher
from .scorer import Finished, Scorer
from .streamstats import StreamStatsPoller

__all__ = ["Worker"]

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, settings: Settings, redis_url: str, *, metrics: Metrics | None = None,
                 model: LoadedModel | None = None) -> None:
        s = self.settings = settings
        self.metrics = metrics or Metrics(channels=s.metrics_channels)
        self.registry = self.metrics.registry
        self.model = model
        self.redis = connect(redis_url, timeout_s=s.redis_timeout_s)
        self.streams = StreamClient(self.redis, input_stream=s.input_stream, output_stream=s.output_stream,
                                    dead_stream=s.dead_letter_stream, group=s.group, consumer=s.consumer,
                                    output_maxlen=s.output_maxlen, dead_maxlen=s.dead_letter_maxlen)
        self.limits = Limits(s.max_text_chars, s.max_entry_bytes, s.max_passthrough_chars)
        self._pools = {name: ThreadPoolExecutor(1, thread_name_prefix=f"livetopic-{name}")
                       for name in ("tokenize", "model", "reload")}
        self.stop_reading = asyncio.Event()
        self.retry = Retrying(on_failure=self._redis_failed, on_success=self._redis_back, recover=self._recover)
        self.in_hand = InHand(s.max_inflight, on_change=self._in_hand_changed)
        self.batcher: MicroBatcher[Comment] = MicroBatcher(
            max_items=s.max_batch_size, max_tokens=s.max_batch_tokens, max_wait_s=s.max_wait_ms / 1000,
            cost=lambda c: len(c.ids), on_flush=self.metrics.observe_flush)
        self.turn = ReadTurn(self._may_read)
        self.reader = Reader(s, self.streams, self.retry, self.in_hand, self.turn, self._admit, self.metrics,
                             self.stop_reading)
        self.scorer = Scorer(lambda: self.model, tokenizer_pool=self._pools["tokenize"],
                             model_pool=self._pools["model"], max_batch_tokens=s.max_batch_tokens,
                             metrics=self.metrics)
        self.publisher = Publisher(self.streams, self.retry, self.metrics, self._released, text=s.output_text)
        fetch_stats = functools.partial(stream_stats, self.redis, s.input_stream, s.group,
                                        (s.output_stream, s.dead_letter_stream))
        self.stream_stats = StreamStatsPoller(fetch_stats, self.retry, self.metrics, s.stream_stats_interval_s)
        self.http = HttpServer(self, s.metrics_host, s.metrics_port)
        self.watcher = ModelWatcher(s.model_repo, current=lambda: self.model, swap=self._swap,
                                    executor=self._pools["reload"], metrics=self.metrics,
                                    interval_s=s.reload_interval_s, device=s.device, dtype=s.dtype,
                                    backend=s.backend, compile=s.compile)
        self._model_idle = False  # the batch loop waits for a batch
        self._redis_ok = False
        self._redis_oom = False
        self._stopping = False
        self._progress_at = time.monotonic()  # last batch scored or records published
        self._held = 0

    # --- state ------------------------------------------------------------------------------------
    @property
    def inflight(self) -> int:
        return len(self.in_hand)

    def readiness(self) -> tuple[bool, str]:
        if self.model is None:
            return False, self.watcher.waiting or "model not loaded"
        if self._redis_oom:
            return False, "redis out of memory (maxmemory reached): writes refused, comments stay pending"
        if not self._redis_ok:
            return False, "redis unreachable"
        if self._stopping:
            return False, "shutting down"
        return True, "ok"

    def liveness(self) -> tuple[bool, str]:
        """Dead when comments are in hand and nothing moved for ``stall_timeout_s`` (an orchestrator restarts it)."""
        idle_s = time.monotonic() - self._progress_at
        if self.inflight and idle_s > self.settings.stall_timeout_s:
            return False, f"{self.inflight} comments in hand and no progress for {idle_s:.0f}s"
        return True, "ok"

    def _moved(self) -> None:
        self._progress_at = time.monotonic()

    def _in_hand_changed(self, held: int) -> None:
        if held and not self._held:  # work arrives after a quiet spell: the stall clock starts now
            self._moved()
        self._held = held
        self.metrics.pending.set(held)

    def _set_redis_state(self, ok: bool, oom: bool = False) -> None:
        self._redis_ok, self._redis_oom = ok, oom
        self.metrics.redis_out_of_memory.set(1 if oom else 0)
        self.metrics.ready.set(1 if self.readiness()[0] else 0)

    def _redis_failed(self, what: str, exc: RedisError, attempt: int, delay_s: float) -> None:
        self.metrics.redis_errors.inc()
        oom = isinstance(exc, RedisOutOfMemoryError)
        self._set_redis_state(False, oom)
        if oom:
            log.warning("redis is out of memory (maxmemory reached) and refuses writes: %s failed; what this worker "
                        "holds stays pending; retry %d in %.2fs", what, attempt, delay_s)
        else:
            log.warning("redis %s failed (%s); retry %d in %.2fs", what, exc, attempt, delay_s)

    def _redis_back(self) -> None:
        if not self._redis_ok or self._redis_oom:
            self._set_redis_state(True)

    async def _recover(self, exc: RedisError) -> bool:
        """A lost consumer group is recreated at its resume mark: nothing in the stream is skipped or repeated."""
        if not isinstance(exc, GroupMissingError):
            return False
        state = await self.retry.call("recreate group", self.streams.ensure_group, self.settings.group_start_id)
        self._group_placed(state)
        log.warning("consumer group %s of %s was missing (destroyed, or Redis lost its data); %s at its resume mark "
                    "%s: entries after it are delivered again, and those finished already are not published again",
                    self.settings.group, self.settings.input_stream,
                    "recreated it" if state.created else "another worker recreated it", state.mark)
        return True

    def _group_placed(self, state: GroupState) -> None:
        """Count and say what :meth:`StreamClient.ensure_group` found."""
        if state.recreated:
            self.metrics.group_recreated.inc()
        if state.moved:
            self.metrics.group_moved.labels(reason=state.moved).inc()
        if (warning := state.warning()) is not None:
            log.warning("%s", warning)

    def _swap(self, model: LoadedModel) -> None:
        # On the event loop; the batch loop reads self.model once per batch, so a swap lands between batches.
        self.model = model
        self.metrics.set_model(model.name, model.version, model.device, model.dtype_name, model.backend_name)

    async def _released(self, ids: Iterable[str]) -> None:
        self._moved()
        await self.in_hand.release(ids)

    def poke_reload(self) -> None:
        self.watcher.poke()

    def _may_read(self) -> bool:
        """Take new entries only when this worker can start on them soon: while its model waits for a batch,
        or while nothing is queued for the model. Otherwise new entries stay in Redis for whichever consumer
        of the group frees up first; when this model frees up, the batch loop tops its batch up from Redis."""
        return self._model_idle or len(self.batcher) == 0 or self.stop_reading.is_set()

    # --- lifecycle --------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then drain within ``shutdown_grace_s``."""
        port = await self.http.start()
        log.info("metrics on http://%s:%d/metrics", self.settings.metrics_host, port)
        try:
            await self._start(stop)
            await self._serve(stop)
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
        finally:
            await self._close()

    async def _start(self, stop: asyncio.Event) -> None:
        s = self.settings
        set_torch_threads(s.torch_threads)  # --torch-threads (None: torch's default)
        if self.model is None:  # an empty repository: wait (not ready) for the first version
            self.model = await self.watcher.first_model(s.model_version, stop, self._pools["model"])
            if self.model is None:
                raise asyncio.CancelledError  # stopped while waiting
        # What is loaded now (libraries, the model) lives as long as the process: keep it out of the cyclic
        # garbage collector's full passes, which otherwise stall the worker now and then (~200 ms with
        # bert-base: 400k objects). Models hold no reference cycles, so a reloaded model's predecessor is
        # still freed (by reference counting) when its last batch is done.
        gc.collect()
        gc.freeze()
        self.metrics.set_model(self.model.name, self.model.version, self.model.device, self.model.dtype_name,
                               self.model.backend_name)
        state = await self.retry.call("create group", self.streams.ensure_group, s.group_start_id, stop=stop)
        self._group_placed(state)
        log.info("consumer %s in group %s on %s (%s)", s.consumer, s.group, s.input_stream, state.describe())

    async def _serve(self, stop: asyncio.Event) -> None:
        readers = [asyncio.create_task(self.reader.run(), name="read"),
                   asyncio.create_task(self.reader.reclaim(), name="reclaim"),
                   asyncio.create_task(self.stream_stats.run(self.stop_reading), name="stream-stats")]
        if self.settings.model_version is None:
            readers.append(asyncio.create_task(self.watcher.run(self.stop_reading), name="reload"))
        stages = [asyncio.create_task(self._batch_loop(), name="batch"),
                  asyncio.create_task(self.publisher.run(), name="publish")]
        stopper = asyncio.create_task(stop.wait(), name="stop")
        tasks = [*readers, *stages]
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in done if t is not stopper and not t.cancelled() and t.exception()]
        await self._stop_reading()
        if not failed:  # a stage that broke cannot drain: cancel at once and surface its error
            await self._drain(readers, stages)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        stopper.cancel()
        await asyncio.gather(stopper, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
        if errors:
            log.error("stopping: %s: %s; what this worker held stays pending and is reclaimed once the cause is "
                      "fixed", type(errors[0]).__name__, errors[0])
            raise errors[0]

    async def _stop_reading(self) -> None:
        self._stopping = True
        self.metrics.ready.set(0)
        self.stop_reading.set()
        await self.in_hand.wake()  # a reader waiting for room re-checks the stop
        await self.turn.changed()  # and one waiting for its turn

    async def _drain(self, readers: list[asyncio.Task[None]], stages: list[asyncio.Task[None]]) -> None:
        """Let what was read flow through the pipeline within the grace period, whatever Redis does: readers
        stuck in a Redis call are cancelled when the grace runs out, and so are the stages."""
        grace_s = self.settings.shutdown_grace_s
        deadline = asyncio.get_running_loop().time() + grace_s
        _, stuck = await asyncio.wait(readers, timeout=grace_s)
        for task in stuck:  # a read in flight: what it would return stays in Redis for others
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        self.batcher.close()
        log.info("draining %d in-flight comments (grace %.1fs)", self.inflight, grace_s)
        left_s = max(0.0, deadline - asyncio.get_running_loop().time())
        _, late = await asyncio.wait(stages, timeout=left_s) if left_s else (set(), set(stages))
        if late:
            log.warning("grace period over: %d comments left unacked (others will reclaim them)", self.inflight)

    async def _close(self) -> None:
        await self.http.stop()
        try:
            await self.redis.aclose()
        except Exception as exc:  # closing a broken connection must not hide why the worker stopped
            log.debug("closing the Redis connection: %s", exc)
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    # --- the pipeline -----------------------------------------------------------------------------
    async def _admit(self, entries: list[RawEntry], deliveries: dict[str, int]) -> None:
        """Parse (dead-letter what is invalid or delivered too often), encode and queue the rest."""
        s = self.settings
        comments: list[Comment] = []
        rejected: list[Finished] = []
        for entry_id, fields in entries:
            parsed = parse_entry(entry_id, fields, self.limits, deliveries.get(entry_id, 1), s.max_deliveries)
            if isinstance(parsed, Rejection):
                rejected.append(Finished.rejected(parsed))
            else:
                comments.append(parsed)
        await self.publisher.put(rejected)
        if comments:
            encoded, failures = await self.scorer.encode(comments)
            await self.publisher.put(failures)
            for comment in encoded:
                self.batcher.put(comment)

    async def _batch_loop(self) -> None:
        """The model's turn: form a batch when the model is free, score it, hand it to the publisher."""
        while True:
            if not self._may_read() and len(self.batcher) < self.settings.max_batch_size:
                await self.reader.top_up()  # the read loop holds back: fill the batch from Redis now
            self._model_idle = True
            await self.turn.changed()
            batch = await self.batcher.next_batch()
            self._model_idle = False
            await self.turn.changed()  # the queue may be empty now
            if not batch:
                break
            finished = await self.scorer.score_batch(batch)
            self._moved()
            await self.publisher.put(finished)
        await self.publisher.close()
