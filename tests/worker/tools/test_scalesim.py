"""KEDA's lag formula and the HPA behavior, on made-up lags (the live version: tests/integration/test_scale_sim.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

from worker.tools.scalesim import Autoscaler, ScaleRule, wanted_replicas

ROOT = Path(__file__).resolve().parents[3]

BEHAVIOR = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 30},
            {"type": "Percent", "value": 100, "periodSeconds": 30},
        ],
    },
    "scaleDown": {
        "stabilizationWindowSeconds": 300,
        "selectPolicy": "Max",
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
    },
}


def test_formula_is_ceil_of_lag_over_lag_count_within_bounds() -> None:
    rule = ScaleRule(lag_count=1000, activation_lag_count=100, min_replicas=2, max_replicas=20)
    assert [wanted_replicas(lag, rule) for lag in (0, 1, 2000, 2001, 7500, 19_999, 20_000, 10**6)] == [
        2,
        2,
        2,
        3,
        8,
        20,
        20,
        20,
    ]
    to_zero = ScaleRule(lag_count=1000, activation_lag_count=100, min_replicas=0, max_replicas=5)
    assert [wanted_replicas(lag, to_zero) for lag in (0, 100, 101, 999, 1001)] == [0, 0, 1, 1, 2]


def test_behavior_adds_fast_and_gives_back_slowly() -> None:
    scaler = Autoscaler(ScaleRule(1000, 100, 2, 20, BEHAVIOR))
    timeline = {0: 0, 15: 15_000, 30: 15_000, 45: 15_000, 60: 15_000, 75: 0}
    seen = {t: scaler.step(t, lag) for t, lag in timeline.items()}
    # up: +4 pods or +100% per 30 s, whichever is more: 2 → 6 → 12 → 15
    assert seen == {0: 2, 15: 6, 30: 6, 45: 12, 60: 12, 75: 12}
    later = [scaler.step(t, 0) for t in range(90, 1200, 30)]
    assert later[: (360 - 90) // 30 + 1] == [12] * 10  # nothing given back while the 300 s window holds 15
    drops = [b - a for a, b in itertools.pairwise(later) if b != a]
    assert drops and all(d == -1 for d in drops)  # then one pod per 60 s
    assert later[-1] == 2


def test_reads_the_scaled_object_of_deploy() -> None:
    rule = ScaleRule.from_scaledobject(ROOT / "deploy" / "overlays" / "keda" / "keda-scaledobject.yaml")
    assert (rule.lag_count, rule.activation_lag_count, rule.min_replicas, rule.max_replicas) == (1000, 100, 2, 20)
    assert rule.behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
