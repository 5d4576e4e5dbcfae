"""What the worker knows of itself, in one place: the stages and the model watcher report here, and this
answers ``/readyz`` and ``/healthz`` and sets ``livetopic_ready``, ``livetopic_redis_out_of_memory`` and
``livetopic_pending_comments`` from the same state (the gauges never disagree with the probes)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..errors import RedisError, RedisOutOfMemoryError
from .metrics import Metrics

__all__ = ["Health"]

log = logging.getLogger(__name__)


class Health:
    """Ready: a model is served, Redis answers (and takes writes), and the worker is not stopping. Alive: nothing
    is in hand, or something moved (a batch started, records published) within ``stall_timeout_s``."""

    def __init__(
        self, metrics: Metrics, stall_timeout_s: float = 120.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._metrics, self.stall_timeout_s, self._clock = metrics, stall_timeout_s, clock
        self._model: str | None = "model not loaded"  # why no model is served, or None when one is
        self._redis_ok = False
        self._redis_oom = False
        self._stopping = False
        self._held = 0
        self._moved_at = clock()
        self._show()

    # --- reports ----------------------------------------------------------------------------------
    def model_waiting(self, reason: str) -> None:
        """No model is served yet: ``reason`` says what the worker waits for."""
        self._model = reason
        self._show()

    def model_served(self) -> None:
        self._model = None
        self._show()

    def redis_failed(self, what: str, exc: RedisError, attempt: int, delay_s: float) -> None:
        """A Redis call failed transiently and is retried (:class:`~worker.streams.retry.Retrying`'s
        ``on_failure``)."""
        self._metrics.redis_errors.inc()
        oom = isinstance(exc, RedisOutOfMemoryError)
        if oom:
            log.warning(
                "redis is out of memory (maxmemory reached) and refuses writes: %s failed; what this worker "
                "holds stays pending; retry %d in %.2fs",
                what,
                attempt,
                delay_s,
            )
        else:
            log.warning("redis %s failed (%s); retry %d in %.2fs", what, exc, attempt, delay_s)
        self._redis_ok, self._redis_oom = False, oom
        self._show()

    def redis_answered(self) -> None:
        """A Redis call succeeded (``on_success``: on every call, so it costs nothing when nothing changes)."""
        if not self._redis_ok or self._redis_oom:
            self._redis_ok, self._redis_oom = True, False
            self._show()

    def stopping(self) -> None:
        self._stopping = True
        self._show()

    def held(self, count: int) -> None:
        """Comments in hand now. Work that arrives after a quiet spell starts the stall clock."""
        if count and not self._held:
            self._moved_at = self._clock()
        self._held = count
        self._metrics.pending.set(count)

    def moved(self) -> None:
        """Progress: a batch went to the model, or records were published."""
        self._moved_at = self._clock()

    # --- answers ----------------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, str]:
        if self._model is not None:
            return False, self._model
        if self._redis_oom:
            return False, "redis out of memory (maxmemory reached): writes refused, comments stay pending"
        if not self._redis_ok:
            return False, "redis unreachable"
        if self._stopping:
            return False, "shutting down"
        return True, "ok"

    def liveness(self) -> tuple[bool, str]:
        """Dead when comments are in hand and nothing moved for ``stall_timeout_s`` (an orchestrator restarts it)."""
        idle_s = self._clock() - self._moved_at
        if self._held and idle_s > self.stall_timeout_s:
            return False, f"{self._held} comments in hand and no progress for {idle_s:.0f}s"
        return True, "ok"

    def _show(self) -> None:
        self._metrics.ready.set(1 if self.readiness()[0] else 0)
        self._metrics.redis_out_of_memory.set(1 if self._redis_oom else 0)
