"""The worker: wires the stages, starts them, drains them on stop and surfaces the first failure. Nothing else
happens here: each comment goes from stage to stage through the queues below, never through :class:`Worker`.

::

    Reader (per shard) ──Channel[Delivery]──► Admit ──MicroBatcher[Item]──► Score ──Channel[list[Item]]──► Publisher
      XREADGROUP,                             parse, reject,                model thread,   ▲              one script
      XAUTOCLAIM                              encode (tokenizer             poison split    │              per part
                                              thread)                                       │
                                               └─ rejected ─────────────────────────────────┘
      ▲ hold                                                                                               │ release
      └─── Flow: the comments in hand (hold … started … release), their room and the turn to read ◄────────┘

Beside them: the model watcher (serves a new version: admit encodes with it from then on), the stream-stats
poller, and the metrics server answered by :class:`~.health.Health`. Signal handlers are not installed here:
the entry point sets ``stop`` (and calls :meth:`Worker.poke_reload`).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..model.precision import set_torch_threads
from ..model.runtime import LoadedModel
from ..settings import Settings
from ..streams.client import connect
from ..streams.info import stream_stats
from ..streams.shards import ShardLayout
from .admit import Admit
from .batcher import MicroBatcher
from .channel import Channel
from .flow import Flow
from .health import Health
from .http import HttpServer
from .item import Delivery, Item
from .metrics import Metrics
from .publisher import Publisher
from .reader import Reader
from .reload import ModelWatcher
from .score import Score
from .shard import open_shard
from .streamstats import StreamStatsPoller

__all__ = ["Worker"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_CHANNEL_SIZE = 4  # deliveries waiting for admit, or batches waiting for the publisher


class Worker:
    def __init__(
        self, settings: Settings, redis_url: str, *, metrics: Metrics | None = None, model: LoadedModel | None = None
    ) -> None:
        s = self.settings = settings
        self.metrics = metrics or Metrics(channels=s.metrics_channels)
        self.health = Health(self.metrics, s.stall_timeout_s)
        self.redis = connect(redis_url, timeout_s=s.redis_timeout_s, cluster=s.redis_cluster)
        self.shards = [open_shard(k, self.redis, s, self.health, self.metrics) for k in ShardLayout.served(s)]
        self.flow = Flow(s.max_inflight, ahead=s.max_batch_size, health=self.health)
        self._pools = {
            name: ThreadPoolExecutor(1, thread_name_prefix=f"livetopic-{name}")
            for name in ("tokenize", "model", "reload")
        }
        self.watcher = ModelWatcher(
            s.model_repo,
            executor=self._pools["reload"],
            metrics=self.metrics,
            health=self.health,
            interval_s=s.reload_interval_s,
            device=s.device,
            dtype=s.dtype,
            backend=s.backend,
            compile=s.compile,
            model=model,
        )
        self.stop_reading = asyncio.Event()
        self.stream_stats = [
            StreamStatsPoller(
                functools.partial(stream_stats, self.redis, c.input_stream, s.group, (c.output_stream, c.dead_stream)),
                shard.retry,
                self.metrics,
                s.stream_stats_interval_s,
                shard.index,
            )
            for shard in self.shards
            for c in (shard.client,)
        ]
        self.http = HttpServer(self.health, self.metrics.registry, s.metrics_host, s.metrics_port)
        self._wire_stages()

    def _wire_stages(self) -> None:
        """read ─► admit ─► batcher ─► score ─► publish, each arrow a bounded queue (see the module's drawing)."""
        s = self.settings
        self.admitting: Channel[Delivery] = Channel(_CHANNEL_SIZE)
        batcher: MicroBatcher[Item] = MicroBatcher(
            max_items=s.max_batch_size,
            max_tokens=s.max_batch_tokens,
            max_wait_s=s.max_wait_ms / 1000,
            cost=lambda item: len(item.ids),
            on_flush=self.metrics.observe_flush,
        )
        publishing: Channel[list[Item]] = Channel(_CHANNEL_SIZE)
        self.readers = [
            Reader(
                s, shard.index, shard.client, shard.retry, self.flow, self.admitting, self.metrics, self.stop_reading
            )
            for shard in self.shards
        ]
        self.admit = Admit(
            self.admitting,
            batcher,
            publishing,
            self.flow,
            lambda: self.watcher.model,
            pool=self._pools["tokenize"],
            settings=s,
        )
        self.score = Score(
            batcher,
            publishing,
            self.flow,
            tokenizer_pool=self._pools["tokenize"],
            model_pool=self._pools["model"],
            max_batch_tokens=s.max_batch_tokens,
            metrics=self.metrics,
        )
        self.publisher = Publisher(
            publishing,
            {shard.index: shard for shard in self.shards},
            self.flow,
            self.metrics,
            text=s.output_text,
            replicas=s.wait_replicas,
        )

    def poke_reload(self) -> None:
        self.watcher.poke()

    # --- lifecycle --------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then drain within ``shutdown_grace_s``; raises the first failure."""
        port = await self.http.start()
        log.info("metrics on http://%s:%d/metrics", self.settings.metrics_host, port)
        try:
            if await self._start(stop):
                await self._serve(stop)
        finally:
            await self._close()

    async def _start(self, stop: asyncio.Event) -> bool:
        """The first model, then the consumer groups; False if ``stop`` came first."""
        s = self.settings
        set_torch_threads(s.torch_threads)  # --torch-threads (None: torch's default)
        model = self.watcher.model  # given (tests), else: wait (not ready) for the first version that loads
        if (
            model is None
            and (model := await self.watcher.first_model(s.model_version, stop, self._pools["model"])) is None
        ):
            return False
        self.watcher.serve(model)
        # What is loaded now (libraries, the model) lives as long as the process: keep it out of the cyclic
        # garbage collector's full passes, which otherwise stall the worker now and then (~200 ms with
        # bert-base: 400k objects). Models hold no reference cycles, so a reloaded model's predecessor is
        # still freed (by reference counting) when its last batch is done.
        gc.collect()
        gc.freeze()
        for shard in self.shards:
            if not await shard.start(stop):
                return False
        return True

    async def _serve(self, stop: asyncio.Event) -> None:
        feeders = [task(reader.run(), f"read-{reader.shard}") for reader in self.readers]
        feeders += [task(reader.reclaim(), f"reclaim-{reader.shard}") for reader in self.readers]
        feeders += [task(p.run(self.stop_reading), f"stream-stats-{p.shard}") for p in self.stream_stats]
        if self.settings.model_version is None:
            feeders.append(task(self.watcher.run(self.stop_reading), "reload"))
        stages = [
            task(self.admit.run(), "admit"),
            task(self.score.run(), "score"),
            task(self.publisher.run(), "publish"),
        ]
        stopper = task(stop.wait(), "stop")
        failed: list[asyncio.Task[None]] = []
        try:
            done, _ = await asyncio.wait([*feeders, *stages, stopper], return_when=asyncio.FIRST_COMPLETED)
            failed = [t for t in (*feeders, *stages) if t in done and not t.cancelled() and t.exception() is not None]
            self._stop_reading()
            if not failed:  # a stage that broke cannot drain: stop at once and surface its error
                await self._drain(feeders, stages)
        finally:
            await _finish([*feeders, *stages, stopper], first=failed)

    def _stop_reading(self) -> None:
        self.health.stopping()
        self.stop_reading.set()
        self.flow.stop()  # a reader waiting for room or its turn stops waiting

    async def _drain(self, feeders: list[asyncio.Task[None]], stages: list[asyncio.Task[None]]) -> None:
        """Let what was read flow through the stages within the grace period, whatever Redis does: a reader stuck
        in a Redis call is cancelled when the grace runs out (what it would return stays in Redis for others), and
        so are the stages."""
        loop = asyncio.get_running_loop()
        grace_s = self.settings.shutdown_grace_s
        deadline = loop.time() + grace_s
        _, stuck = await asyncio.wait(feeders, timeout=grace_s)
        for stuck_task in stuck:
            stuck_task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        self.admitting.close()  # no more deliveries: each stage ends once what is upstream has
        log.info("draining %d in-flight comments (grace %.1fs)", len(self.flow), grace_s)
        left_s = deadline - loop.time()
        done: set[asyncio.Task[None]] = set()
        late = set(stages)
        if left_s > 0:
            done, late = await asyncio.wait(stages, timeout=left_s, return_when=asyncio.FIRST_EXCEPTION)
        if late and not any(t.exception() for t in done):  # a stage that failed is said by _finish
            log.warning("grace period over: %d comments left unacked (others will reclaim them)", len(self.flow))

    async def _close(self) -> None:
        await self.http.stop()
        try:
            await self.redis.aclose()
        except Exception as exc:  # closing a broken connection must not hide why the worker stopped
            log.debug("closing the Redis connection: %s", exc)
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)


def task(coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
    return asyncio.create_task(coro, name=name)


async def _finish(tasks: list[asyncio.Task[Any]], first: list[asyncio.Task[Any]]) -> None:
    """Cancel what still runs, wait for every task, and raise the first failure (``first``: those that failed
    before the stop; else any that failed since)."""
    for running in tasks:
        running.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    errors = [t.exception() for t in [*first, *tasks] if not t.cancelled() and t.exception() is not None]
    if errors:
        error = errors[0]
        assert error is not None
        log.error(
            "stopping: %s: %s; what this worker held stays pending and is reclaimed once the cause is fixed",
            type(error).__name__,
            error,
        )
        raise error
