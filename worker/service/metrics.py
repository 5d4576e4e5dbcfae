"""Metric definitions. Each worker owns a :class:`Metrics` with its own registry, so several workers
(and tests) can live in one process. Metrics carry no comment text. No ``*_created`` series are exposed."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import package_version
from ..wire import RETRACT_ACTIONS, entry_age_s
from .batcher import FLUSH_REASONS

__all__ = ["SKIP_REASONS", "Metrics", "StreamGauges"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Waiting in the stream: milliseconds when workers keep up, minutes under a backlog.
_QUEUE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_BATCH_WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_TOKEN_BUCKETS = (16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
# Why a version newer than the one served is not served (livetopic_model_versions_skipped{reason}).
SKIP_REASONS = ("incomplete", "failed", "refused", "outside")


class StreamGauges(Collector):
    """``livetopic_stream_lag{shard}``, ``livetopic_stream_pending{shard}`` and
    ``livetopic_stream_length{stream,shard}``, as last polled (one poll per shard). A value Redis did not report
    (lag on Redis < 7, a group not created yet) is left out rather than shown as 0; nothing is exposed before the
    first poll."""

    def __init__(self) -> None:
        self.lag: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self.lengths: dict[tuple[str, str], int] = {}  # (stream, shard) → XLEN

    def set(self, shard: str, lag: int | None, pending: int | None, lengths: Mapping[str, int]) -> None:
        for values, value in ((self.lag, lag), (self.pending, pending)):
            if value is None:
                values.pop(shard, None)
            else:
                values[shard] = value
        self.lengths = {key: n for key, n in self.lengths.items() if key[1] != shard}
        self.lengths.update(((stream, shard), n) for stream, n in lengths.items())

    def describe(self) -> Iterable[Metric]:
        return self._families(everything=True)

    def collect(self) -> Iterable[Metric]:
        return self._families(everything=False)

    def _families(self, everything: bool) -> Iterator[Metric]:
        single = (
            (
                "livetopic_stream_lag",
                "Entries of the shard's input stream not yet delivered to the consumer group (XINFO GROUPS lag; "
                "Redis 7+).",
                self.lag,
            ),
            (
                "livetopic_stream_pending",
                "Entries delivered to the shard's consumer group and not yet acknowledged (XINFO GROUPS pending).",
                self.pending,
            ),
        )
        for name, help_text, values in single:
            if everything or values:
                family = GaugeMetricFamily(name, help_text, labels=["shard"])
                for shard, value in sorted(values.items()):
                    family.add_metric([shard], value)
                yield family
        if everything or self.lengths:
            family = GaugeMetricFamily(
                "livetopic_stream_length",
                "Entries in the input, output and dead-letter streams of each shard (XLEN).",
                labels=["stream", "shard"],
            )
            for (stream, shard), length in sorted(self.lengths.items()):
                family.add_metric([stream, shard], length)
            yield family


class _Declare:
    """Metrics that register in one registry: a name, its help, its label names (and a histogram's buckets)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, help_text, labels, registry=self.registry)

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, help_text, labels, registry=self.registry)

    def histogram(self, name: str, help_text: str, buckets: Sequence[float], labels: Sequence[str] = ()) -> Histogram:
        return Histogram(name, help_text, labels, buckets=buckets, registry=self.registry)


class Metrics:
    """Every metric of one worker, in its own registry, grouped by the part of the worker that observes it."""

    def __init__(
        self, registry: CollectorRegistry | None = None, channels: Iterable[str] = (), *, process: bool = True
    ) -> None:
        disable_created_metrics()  # process-wide: no *_created series, whichever registry
        self.registry = registry or CollectorRegistry()
        if process:  # the standard process_* (RSS, CPU, start time: restarts) and python_* (GC, version) series
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.build_info = Gauge(
            "livetopic_build_info",
            "1, labelled with the livetopic and Python versions.",
            ["version", "python"],
            registry=self.registry,
        )
        self.build_info.labels(version=package_version(), python=platform.python_version()).set(1)
        self._channels = frozenset(channels)  # the allowlist of livetopic_label_total's channel label
        self.stream = StreamGauges()
        self.registry.register(self.stream)
        declare = _Declare(self.registry)
        self._define_reading(declare)
        self._define_model(declare)
        self._define_outcomes(declare)
        self._define_health(declare)
        self._preset_labels()

    def _define_reading(self, m: _Declare) -> None:
        """From the stream to the model: waits, batches."""
        self.queue_wait_seconds = m.histogram(
            "livetopic_queue_wait_seconds", "From the input entry id's time to a worker reading it.", _QUEUE_BUCKETS
        )
        self.batch_wait_seconds = m.histogram(
            "livetopic_batch_wait_seconds",
            "From a batch's first comment arriving at the batcher to the batch's flush.",
            _BATCH_WAIT_BUCKETS,
        )
        self.batch_flushes = m.counter(
            "livetopic_batch_flushes",
            "Batches flushed, by why: size, tokens, deadline (max wait after the first comment) or drain (shutdown).",
            ["reason"],
        )
        self.pending = m.gauge("livetopic_pending_comments", "Comments read by this worker and not yet acked.")
        self.reclaimed = m.counter("livetopic_reclaimed", "Entries reclaimed from other consumers.")

    def _define_model(self, m: _Declare) -> None:
        """The model: batches run, the version served, reloads."""
        self.batch_size = m.histogram("livetopic_batch_size", "Comments per model batch.", _SIZE_BUCKETS)
        self.batch_tokens = m.histogram(
            "livetopic_batch_tokens", "Real (unpadded) tokens per model batch.", _TOKEN_BUCKETS
        )
        self.padded_tokens = m.counter("livetopic_padded_tokens", "Tokens fed to the model, padding included.")
        self.inference_seconds = m.histogram(
            "livetopic_inference_seconds",
            "Model forward time per batch (of a pipeline: its first stage).",
            _LATENCY_BUCKETS,
        )
        self.stage_inference_seconds = m.histogram(
            "livetopic_stage_inference_seconds",
            "Forward time per batch of each stage of the version served (a single model: stage 'model').",
            _LATENCY_BUCKETS,
            ["stage"],
        )
        self.stage_comments = m.counter(
            "livetopic_stage_comments",
            "Comments each stage of the version served ran on (a further stage: those that met its condition).",
            ["stage"],
        )
        self.model_info = m.gauge(
            "livetopic_model_info",
            "The model version being served, and on what device, dtype and backend (value 1).",
            ["name", "version", "device", "dtype", "backend"],
        )
        self.reloads = m.counter("livetopic_model_reloads", "Model reload attempts, by result.", ["result"])
        self.versions_skipped = m.gauge(
            "livetopic_model_versions_skipped",
            "Versions of the model repository newer "
            "than the one served that this worker does not serve, by why: incomplete "
            "(files its manifest lists missing or of another size), failed (does not "
            "load or validate), refused (changes the labels unannounced), outside (a "
            "symlink out of the repository). All 0 while it serves the newest.",
            ["reason"],
        )

    def _define_outcomes(self, m: _Declare) -> None:
        """What the publish script published."""
        self.comments = m.counter("livetopic_comments", "Comments finished, by outcome.", ["outcome"])
        self.end_to_end_seconds = m.histogram(
            "livetopic_end_to_end_seconds", "From the input entry id's time to publish.", _LATENCY_BUCKETS
        )
        self.labels = m.counter(
            "livetopic_label",
            "Labels published, by label, channel and stage (topic heat; channel is "
            "one of --metrics-channels, else 'other'; 'all' when none are listed; stage: the pipeline stage that "
            "gave the label, 'model' for a single model).",
            ["label", "channel", "stage"],
        )
        self.retractions = m.counter(
            "livetopic_retractions",
            "Retractions published (a moderator's deletion of a comment, or ban or timeout of its author), by action: "
            "delete, ban, timeout. Not counted in livetopic_comments.",
            ["action"],
        )
        self.duplicates_suppressed = m.counter(
            "livetopic_duplicates_suppressed",
            "Results not published because "
            "the comment was finished already (another consumer published it "
            "first, or it was delivered again).",
        )
        self.unpending_published = m.counter(
            "livetopic_unpending_published",
            "Comments published that were in no "
            "consumer's pending list (XGROUP DELCONSUMER, a recreated group): "
            "unfinished, so published once all the same.",
        )

    def _define_health(self, m: _Declare) -> None:
        """Readiness, Redis and the consumer group."""
        self.ready = m.gauge("livetopic_ready", "1 when the model is loaded and Redis is reachable.")
        self.redis_errors = m.counter("livetopic_redis_errors", "Redis command failures (retried).")
        self.redis_out_of_memory = m.gauge(
            "livetopic_redis_out_of_memory",
            "1 while Redis refuses writes at its maxmemory limit (the worker backs off; what it holds stays pending).",
        )
        self.group_recreated = m.counter(
            "livetopic_group_recreated",
            "Times this worker recreated a lost consumer group (destroyed, or Redis "
            "lost its data) at its resume mark: nothing skipped, nothing repeated.",
        )
        self.group_moved = m.counter(
            "livetopic_group_moved",
            "Times the consumer group was moved to its resume mark: "
            "'behind' (it would have delivered finished comments again), 'lost' (comments "
            "it had delivered were pending nowhere and would never have come again).",
            ["reason"],
        )

    def _preset_labels(self) -> None:
        """Every label value known in advance is exposed (at 0) before it is first observed."""
        for outcome in ("classified", "dead_lettered"):
            self.comments.labels(outcome=outcome)
        for result in ("ok", "failed", "refused"):
            self.reloads.labels(result=result)
        for reason in FLUSH_REASONS:
            self.batch_flushes.labels(reason=reason)
        for reason in ("behind", "lost"):
            self.group_moved.labels(reason=reason)
        for action in RETRACT_ACTIONS:
            self.retractions.labels(action=action)
        self.set_skipped({})

    def set_model(self, name: str, version: int, device: str, dtype: str, backend: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name=name, version=str(version), device=device, dtype=dtype, backend=backend).set(1)

    def set_skipped(self, counts: Mapping[str, int]) -> None:
        """``livetopic_model_versions_skipped``: how many newer versions are skipped, by reason."""
        for reason in SKIP_REASONS:
            self.versions_skipped.labels(reason=reason).set(counts.get(reason, 0))

    def channel_label(self, channel: str | None) -> str:
        """The ``channel`` label value for a comment's channel: bounded by the allowlist."""
        if not self._channels:
            return "all"
        return channel if channel in self._channels else "other"

    def observe_stage(self, stage: str, seconds: float, comments: int, *, first: bool) -> None:
        """One forward run of a stage: its time and how many comments it scored."""
        if first:
            self.inference_seconds.observe(seconds)
        self.stage_inference_seconds.labels(stage=stage).observe(seconds)
        self.stage_comments.labels(stage=stage).inc(comments)

    def observe_flush(self, reason: str, waited_s: float) -> None:
        """The batcher's ``on_flush``."""
        self.batch_flushes.labels(reason=reason).inc()
        self.batch_wait_seconds.observe(waited_s)

    def observe_queue_wait(self, entry_ids: Iterable[str], now_s: float | None = None) -> None:
        """Entries just read for the first time: how long each waited in the stream."""
        now = time.time() if now_s is None else now_s
        for entry_id in entry_ids:
            self.queue_wait_seconds.observe(entry_age_s(entry_id, now))

    def set_stream_stats(
        self, lag: int | None, pending: int | None, lengths: Mapping[str, int], shard: int = 0
    ) -> None:
        self.stream.set(str(shard), lag, pending, lengths)

    def series_names(self) -> set[str]:
        """Every series name this worker can expose (``_total``, ``_bucket``… included), whether observed yet
        or not: what dashboards and alerts may refer to."""
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",),
            "summary": ("", "_sum", "_count"),
            "info": ("_info",),
        }
        names: set[str] = set()
        families = [*self.registry.collect(), *self.stream.describe()]
        for family in families:
            names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        return names
