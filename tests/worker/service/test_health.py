"""The one readiness and liveness source: its answers follow the reports in order of importance, and the gauges
always say the same as /readyz (an injected clock for the stall timeout: no waiting)."""

from __future__ import annotations

from worker.errors import RedisOutOfMemoryError, RedisTransientError
from worker.service.health import Health
from worker.service.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gauges(metrics: Metrics) -> tuple[float | None, float | None]:
    get = metrics.registry.get_sample_value
    return get("livetopic_ready"), get("livetopic_redis_out_of_memory")


def test_readiness_in_order_and_the_gauges_agree() -> None:
    metrics = Metrics()
    health = Health(metrics)
    steps: list[tuple[bool, str]] = [health.readiness()]
    health.model_waiting("waiting for a first model version in /models")
    steps.append(health.readiness())
    health.model_served()
    steps.append(health.readiness())  # no Redis call has succeeded yet
    health.redis_answered()
    steps.append(health.readiness())
    assert gauges(metrics) == (1, 0)
    health.redis_failed("publish", RedisOutOfMemoryError("OOM command not allowed", "publish"), 1, 0.1)
    steps.append(health.readiness())
    assert gauges(metrics) == (0, 1)
    health.redis_failed("read", RedisTransientError("connection reset", "read"), 2, 0.2)
    steps.append(health.readiness())
    assert gauges(metrics) == (0, 0)
    health.redis_answered()
    health.stopping()
    steps.append(health.readiness())
    assert gauges(metrics) == (0, 0)
    assert steps == [
        (False, "model not loaded"),
        (False, "waiting for a first model version in /models"),
        (False, "redis unreachable"),
        (True, "ok"),
        (False, "redis out of memory (maxmemory reached): writes refused, comments stay pending"),
        (False, "redis unreachable"),
        (False, "shutting down"),
    ]
    assert metrics.registry.get_sample_value("livetopic_redis_errors_total") == 2


def test_stalled_only_with_comments_in_hand_and_no_progress() -> None:
    clock = Clock()
    health = Health(Metrics(), stall_timeout_s=10, clock=clock)
    clock.now += 60
    assert health.liveness() == (True, "ok")  # idle: nothing in hand
    health.held(5)  # work after a quiet spell: the stall clock starts now
    clock.now += 9
    assert health.liveness() == (True, "ok")
    health.moved()
    clock.now += 10
    assert health.liveness() == (True, "ok")
    clock.now += 1
    assert health.liveness() == (False, "5 comments in hand and no progress for 11s")
    health.held(0)
    assert health.liveness() == (True, "ok")
