"""``livetopic scale-sim``: the replicas KEDA's lag trigger would ask for, from a live stream's XINFO GROUPS."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from ..options import REDIS_FLAGS, Options, add_command
from ..settings import Settings
from .common import run_on_redis

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from ..tools.scalesim import ScaleRule

__all__ = ["ScaleSimOptions", "register"]

SETTINGS = (*REDIS_FLAGS, "input_stream", "group", "shards")
HELP = "replicas KEDA's lagCount trigger would ask for, from the live group lag"
ABOUT = (
    "Poll XINFO GROUPS of the input stream and print the replicas that KEDA's redis-streams trigger (lagCount) "
    "and the HPA's behavior would set: ceil(lag / lagCount) bounded by min/max, then paced by the behavior."
)


class ScaleSimOptions(Options):
    scaledobject: Path | None = Field(
        None,
        description="read lagCount, min/max and behavior from this ScaledObject "
        "(e.g. deploy/overlays/keda/keda-scaledobject.yaml); otherwise the flags below",
    )
    lag_count: int = Field(1000, ge=1, description="lagCount: the lag one replica is there for")
    activation_lag_count: int = Field(
        100, ge=0, description="activationLagCount: the lag above which the trigger is active (scales from zero)"
    )
    min_replicas: int = Field(2, ge=0, description="minReplicaCount")
    max_replicas: int = Field(20, ge=1, description="maxReplicaCount")
    interval: float = Field(5.0, gt=0, description="seconds between polls")
    speed: float = Field(
        1.0, gt=0, description="simulated seconds per real second, to see the behavior's windows pass sooner"
    )
    count: int | None = Field(None, ge=1, description="stop after N polls")
    as_json: bool = Field(False, alias="json", description="one JSON object per poll")

    def rule(self) -> ScaleRule:
        from ..tools.scalesim import ScaleRule

        if self.scaledobject:
            return ScaleRule.from_scaledobject(self.scaledobject)
        return ScaleRule(self.lag_count, self.activation_lag_count, self.min_replicas, self.max_replicas)


async def _simulate(settings: Settings, redis: aioredis.Redis, options: ScaleSimOptions) -> int:
    from ..streams.info import total_stats
    from ..streams.shards import ShardLayout
    from ..tools.scalesim import Sample, poll

    rule = options.rule()

    def show(sample: Sample) -> None:
        if options.as_json:
            print(json.dumps(sample.as_dict()), flush=True)
        else:
            lag = "n/a (Redis < 7)" if sample.lag is None else sample.lag
            print(
                f"t={sample.t:7.1f}s  lag={lag!s:>8}  pending={sample.pending!s:>6}  "
                f"ceil(lag/{rule.lag_count})={sample.wanted!s:>3}  replicas={sample.replicas}",
                flush=True,
            )

    if not options.as_json:
        print(
            f"lagCount {rule.lag_count}, activationLagCount {rule.activation_lag_count}, replicas "
            f"{rule.min_replicas}–{rule.max_replicas}, simulated time x{options.speed:g}",
            flush=True,
        )
    fetch = functools.partial(total_stats, redis, ShardLayout.of(settings).all(settings.input_stream), settings.group)
    await poll(fetch, rule, interval_s=options.interval, speed=options.speed, count=options.count, on_sample=show)
    return 0


def cmd_scale_sim(options: ScaleSimOptions, settings: Settings) -> int:
    return run_on_redis(settings, _simulate, options)


def register(sub: argparse._SubParsersAction) -> None:
    add_command(
        sub, "scale-sim", cmd_scale_sim, options=ScaleSimOptions, settings=SETTINGS, help=HELP, description=ABOUT
    )
