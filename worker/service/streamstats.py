"""The worker as its own stream exporter: every few seconds, the input stream's group lag and pending count
and the length of the input, output and dead-letter streams, into :class:`~worker.service.metrics.Metrics`.

Every worker polls and reports the same numbers (dashboards and alerts take ``max``). A transient Redis error is
retried under the worker's policy (the gauges keep their last values meanwhile); any other (an ACL without
XINFO, say) is logged and empties the gauges until a poll succeeds again: an observer never stops the worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..errors import RedisError
from ..streams.info import StreamStats
from ..streams.retry import Retrying, sleep_or_stop
from .metrics import Metrics

__all__ = ["StreamStatsPoller"]

log = logging.getLogger(__name__)


class StreamStatsPoller:
    """``fetch()`` (e.g. a bound :func:`~worker.streams.info.stream_stats`) every ``interval_s``, into ``metrics``
    (labelled ``shard``)."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[StreamStats]],
        retry: Retrying,
        metrics: Metrics,
        interval_s: float,
        shard: int = 0,
    ) -> None:
        self.fetch, self.retry, self.metrics, self.interval_s, self.shard = fetch, retry, metrics, interval_s, shard
        self._said_no_lag = False
        self._failing: str | None = None  # the last error said, until a poll succeeds

    async def poll_once(self, stop: asyncio.Event | None = None) -> StreamStats | None:
        """One poll into the metrics; None when Redis refuses it (and no gauges then) or ``stop`` is set while it
        backs off."""
        try:
            stats = await self.retry.call_until(stop or asyncio.Event(), "stream stats", self.fetch)
        except RedisError as exc:
            self.metrics.set_stream_stats(None, None, {}, self.shard)
            if str(exc) != self._failing:
                self._failing = str(exc)
                log.warning("cannot poll the stream numbers (%s): livetopic_stream_* left out until it works", exc)
            return None
        if stats is None:
            return None
        self._failing = None
        self.metrics.set_stream_stats(stats.lag, stats.pending, stats.lengths, self.shard)
        if stats.lag is None and stats.pending is not None and not self._said_no_lag:
            self._said_no_lag = True
            log.info(
                "Redis does not report the group's lag (Redis < 7, or deleted entries it cannot count past): "
                "livetopic_stream_lag is left out until it does"
            )
        return stats

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop``."""
        while not stop.is_set():
            await self.poll_once(stop)
            if await sleep_or_stop(self.interval_s, stop):
                return
