"""A shard: one input stream with its consumer group, resume mark and publish script (a
:class:`~worker.streams.client.StreamClient`), under its own retry policy, whose recovery recreates that group
at its resume mark when it is lost. A worker serves the shards of ``--shard-set`` (all by default; the names of
each: :class:`~worker.streams.shards.ShardLayout`): one reader each, one admit stage for all, and each
:class:`~.item.Item` routed back to its shard's script by the publisher."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from ..errors import GroupMissingError, RedisError
from ..settings import Settings
from ..streams.client import StreamClient
from ..streams.durable import Durability
from ..streams.group import GroupState
from ..streams.retry import Retrying
from ..streams.shards import ShardLayout
from .health import Health
from .metrics import Metrics

__all__ = ["Shard", "open_shard"]

log = logging.getLogger(__name__)


class Shard:
    """Shard ``index``: its stream client and its retry policy (failures reported to ``health``)."""

    def __init__(self, index: int, client: StreamClient, settings: Settings, health: Health, metrics: Metrics) -> None:
        self.index, self.client, self.settings, self.metrics = index, client, settings, metrics
        self.retry = Retrying(on_failure=health.redis_failed, on_success=health.redis_answered, recover=self.recover)

    async def start(self, stop: asyncio.Event) -> bool:
        """Create the consumer group at its resume mark, or move it there (:meth:`StreamClient.ensure_group`);
        False if ``stop`` came first."""
        s = self.settings
        state = await self.retry.call_until(stop, "create group", self.client.ensure_group, s.group_start_id)
        if state is None:
            return False
        self._placed(state)
        log.info("consumer %s in group %s on %s (%s)", s.consumer, s.group, self.client.input_stream, state.describe())
        return True

    async def recover(self, exc: RedisError) -> bool:
        """A lost consumer group is recreated at its resume mark: nothing in the stream is skipped or repeated
        (the retry policy's ``recover``)."""
        if not isinstance(exc, GroupMissingError):
            return False
        s = self.settings
        state = await self.retry.call("recreate group", self.client.ensure_group, s.group_start_id)
        self._placed(state)
        log.warning(
            "consumer group %s of %s was missing (destroyed, or Redis lost its data); %s at its resume mark "
            "%s: entries after it are delivered again, and those finished already are not published again",
            s.group,
            self.client.input_stream,
            "recreated it" if state.created else "another worker recreated it",
            state.mark,
        )
        return True

    def _placed(self, state: GroupState) -> None:
        """Count and say what :meth:`StreamClient.ensure_group` found."""
        if state.recreated:
            self.metrics.group_recreated.inc()
        if state.moved:
            self.metrics.group_moved.labels(reason=state.moved).inc()
        if (warning := state.warning()) is not None:
            log.warning("%s", warning)


def open_shard(index: int, redis: aioredis.Redis, settings: Settings, health: Health, metrics: Metrics) -> Shard:
    """Shard ``index`` of ``settings``' streams (one shard on a plain Redis: the streams as named) on ``redis``."""
    s = settings
    client = StreamClient(
        redis,
        ShardLayout.of(s).names(index),
        s.consumer,
        output_maxlen=s.output_maxlen,
        dead_maxlen=s.dead_letter_maxlen,
        durability=Durability(s.wait_replicas, s.wait_timeout_ms),
    )
    return Shard(index, client, settings, health, metrics)
