"""``livetopic scale-sim``: the replicas KEDA's lag trigger would ask for, from a live stream's XINFO GROUPS."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

from ..options import REDIS_FLAGS, add_settings_flags
from ..settings import Settings
from .common import run_on_redis

__all__ = ["register"]


async def _simulate(settings: Settings, url: str, args: argparse.Namespace) -> int:
    from ..streams.client import connect
    from ..streams.info import stream_stats
    from ..tools.scalesim import Sample, ScaleRule, poll

    rule = ScaleRule.from_scaledobject(args.scaledobject) if args.scaledobject else ScaleRule(
        args.lag_count, args.activation_lag_count, args.min_replicas, args.max_replicas)
    redis = connect(url, timeout_s=settings.redis_timeout_s)

    def show(sample: Sample) -> None:
        if args.json:
            print(json.dumps(sample.as_dict()), flush=True)
        else:
            lag = "n/a (Redis < 7)" if sample.lag is None else sample.lag
            print(f"t={sample.t:7.1f}s  lag={lag!s:>8}  pending={sample.pending!s:>6}  "
                  f"ceil(lag/{rule.lag_count})={sample.wanted!s:>3}  replicas={sample.replicas}", flush=True)

    if not args.json:
        print(f"lagCount {rule.lag_count}, activationLagCount {rule.activation_lag_count}, replicas "
              f"{rule.min_replicas}–{rule.max_replicas}, simulated time x{args.speed:g}", flush=True)
    try:
        fetch = functools.partial(stream_stats, redis, settings.input_stream, settings.group)
        await poll(fetch, rule, interval_s=args.interval, speed=args.speed, count=args.count, on_sample=show)
    finally:
        await redis.aclose()
    return 0


def cmd_scale_sim(args: argparse.Namespace) -> int:
    return run_on_redis(args, _simulate)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scale-sim", help="replicas KEDA's lagCount trigger would ask for, from the live group lag",
                       description="Poll XINFO GROUPS of the input stream and print the replicas that KEDA's "
                       "redis-streams trigger (lagCount) and the HPA's behavior would set: ceil(lag / lagCount) "
                       "bounded by min/max, then paced by the behavior.")
    p.add_argument("--scaledobject", type=Path, help="read lagCount, min/max and behavior from this ScaledObject "
                   "(e.g. deploy/k8s/keda-scaledobject.yaml); otherwise the flags below")
    p.add_argument("--lag-count", type=int, default=1000, help="lagCount (default 1000)")
    p.add_argument("--activation-lag-count", type=int, default=100, help="activationLagCount (default 100)")
    p.add_argument("--min-replicas", type=int, default=2, help="minReplicaCount (default 2)")
    p.add_argument("--max-replicas", type=int, default=20, help="maxReplicaCount (default 20)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls (default 5)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second, to see the "
                   "behavior's windows pass sooner (default 1)")
    p.add_argument("--count", type=int, help="stop after N polls")
    p.add_argument("--json", action="store_true", help="one JSON object per poll")
    add_settings_flags(p, (*REDIS_FLAGS, "input_stream", "group"))
    p.set_defaults(func=cmd_scale_sim)
