"""``livetopic scale-sim``: what KEDA's ``redis-streams`` trigger (``lagCount``) and the HPA it drives would do
with the workers, fed with the real ``XINFO GROUPS`` lag of a live stream.

KEDA reports the group's lag as an ``AverageValue`` external metric with target ``lagCount``, so the HPA wants
``ceil(lag / lagCount)`` replicas, bounded by ``minReplicaCount`` and ``maxReplicaCount`` (below
``activationLagCount`` a ScaledObject with ``minReplicaCount: 0`` goes to zero). The HPA then paces the change
with its ``behavior``: the stabilization windows (scale up to the lowest, down to the highest recommendation
of the window) and the policies (at most so many pods or percent per period; ``selectPolicy``). This module
computes both: ``wanted`` (the formula) and ``replicas`` (after the behavior), over simulated time.
Not modelled: the HPA's 10% tolerance, KEDA's and the HPA's polling periods, and pod start-up time.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..streams.info import StreamStats

__all__ = ["Autoscaler", "Sample", "ScaleRule", "poll", "wanted_replicas"]


@dataclass(frozen=True, slots=True)
class ScaleRule:
    """The numbers of a ScaledObject that decide its replicas."""

    lag_count: int
    activation_lag_count: int
    min_replicas: int
    max_replicas: int
    behavior: Mapping[str, Any] = field(default_factory=dict)  # the HPA behavior block (empty: HPA defaults)

    @classmethod
    def from_scaledobject(cls, path: Path) -> ScaleRule:
        """Read lagCount, activationLagCount, min/max and the behavior from a ScaledObject manifest."""
        import yaml

        docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "ScaledObject"]
        if len(docs) != 1:
            raise ConfigError(f"{path}: expected one ScaledObject, found {len(docs)}")
        spec = docs[0]["spec"]
        triggers = [t for t in spec.get("triggers", []) if "lagCount" in t.get("metadata", {})]
        if not triggers:
            raise ConfigError(f"{path}: no trigger with lagCount")
        meta = triggers[0]["metadata"]
        behavior = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior", {})
        return cls(
            int(meta["lagCount"]),
            int(meta.get("activationLagCount", 0)),
            int(spec.get("minReplicaCount", 0)),
            int(spec.get("maxReplicaCount", 100)),
            behavior,
        )


def wanted_replicas(lag: int, rule: ScaleRule) -> int:
    """KEDA's documented formula: ceil(lag / lagCount), bounded by min and max (0 when idle and min is 0)."""
    if rule.min_replicas == 0 and lag <= rule.activation_lag_count:
        return 0
    return max(rule.min_replicas, 1, min(rule.max_replicas, math.ceil(lag / rule.lag_count)))


# The HPA's defaults where a behavior leaves a direction out (Kubernetes documentation).
_DEFAULT_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15},
        {"type": "Pods", "value": 4, "periodSeconds": 15},
    ],
}
_DEFAULT_DOWN = {
    "stabilizationWindowSeconds": 300,
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


class Autoscaler:
    """The HPA's replica decisions with a ``behavior`` block, step by step on simulated time ``t`` (seconds)."""

    def __init__(self, rule: ScaleRule, replicas: int | None = None) -> None:
        self.rule = rule
        self.replicas = rule.min_replicas if replicas is None else replicas
        self.up = {**_DEFAULT_UP, **rule.behavior.get("scaleUp", {})}
        self.down = {**_DEFAULT_DOWN, **rule.behavior.get("scaleDown", {})}
        self._recommendations: list[tuple[float, int]] = []
        self._history: list[tuple[float, int]] = [(-math.inf, self.replicas)]

    def _replicas_at(self, t: float) -> int:
        """Replicas at time ``t`` (the last decision at or before it)."""
        return [r for when, r in self._history if when <= t][-1]

    def _limit(self, direction: Mapping[str, Any], t: float, up: bool) -> int:
        limits = []
        for policy in direction["policies"]:
            before = self._replicas_at(t - float(policy["periodSeconds"]))
            change = policy["value"] if policy["type"] == "Pods" else before * policy["value"] / 100
            limits.append(math.ceil(before + change) if up else math.floor(before - change))
        if direction.get("selectPolicy") == "Disabled":
            return self.replicas
        pick = max if (direction.get("selectPolicy", "Max") == "Max") == up else min
        return int(pick(limits))

    def step(self, t: float, lag: int) -> int:
        """Feed the lag seen at ``t``; returns the replicas the HPA sets."""
        wanted = wanted_replicas(lag, self.rule)
        self._recommendations.append((t, wanted))
        horizon = max(self.up["stabilizationWindowSeconds"], self.down["stabilizationWindowSeconds"])
        self._recommendations = [(w, r) for w, r in self._recommendations if w >= t - horizon]
        up_to = min(r for w, r in self._recommendations if w >= t - self.up["stabilizationWindowSeconds"])
        down_to = max(r for w, r in self._recommendations if w >= t - self.down["stabilizationWindowSeconds"])
        target = min(max(self.replicas, up_to), down_to)
        if target > self.replicas:
            target = min(target, self._limit(self.up, t, up=True))
        elif target < self.replicas:
            target = max(target, self._limit(self.down, t, up=False))
        target = max(self.rule.min_replicas, min(self.rule.max_replicas, target))
        if target != self.replicas:
            self.replicas = target
            self._history.append((t, target))
        return self.replicas


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # simulated seconds since the start
    lag: int | None
    pending: int | None
    length: int
    wanted: int | None  # the formula alone
    replicas: int  # after the HPA behavior

    def as_dict(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 1),
            "lag": self.lag,
            "pending": self.pending,
            "length": self.length,
            "wanted": self.wanted,
            "replicas": self.replicas,
        }


async def poll(
    fetch: Callable[[], Any],
    rule: ScaleRule,
    *,
    interval_s: float,
    speed: float = 1.0,
    count: int | None = None,
    on_sample: Callable[[Sample], None] = lambda s: None,
    stop: asyncio.Event | None = None,
) -> list[Sample]:
    """Every ``interval_s`` (real seconds), ``await fetch()`` (a :class:`StreamStats`) and step the autoscaler;
    simulated time runs ``speed`` times faster than real time, so the behavior's windows pass sooner."""
    scaler = Autoscaler(rule)
    samples: list[Sample] = []
    started = time.monotonic()
    while count is None or len(samples) < count:
        stats: StreamStats = await fetch()
        t = (time.monotonic() - started) * speed
        stream_length = next(iter(stats.lengths.values()), 0)
        if stats.lag is None:
            sample = Sample(t, None, stats.pending, stream_length, None, scaler.replicas)
        else:
            sample = Sample(
                t, stats.lag, stats.pending, stream_length, wanted_replicas(stats.lag, rule), scaler.step(t, stats.lag)
            )
        samples.append(sample)
        on_sample(sample)
        if stop is not None and stop.is_set():
            break
        await asyncio.sleep(interval_s)
    return samples
