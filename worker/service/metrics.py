"""Metric definitions. Each worker owns a :class:`Metrics` with its own registry, so several workers
(and tests) can live in one process. Metrics carry no comment text."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_TOKEN_BUCKETS = (16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, channels: Iterable[str] = ()) -> None:
        self.registry = registry or CollectorRegistry()
        self._channels = frozenset(channels)  # the allowlist of livetopic_label_total's channel label
        r = self.registry
        self.comments = Counter("livetopic_comments", "Comments finished, by outcome.", ["outcome"], registry=r)
        self.batch_size = Histogram("livetopic_batch_size", "Comments per model batch.",
                                    buckets=_SIZE_BUCKETS, registry=r)
        self.batch_tokens = Histogram("livetopic_batch_tokens", "Real (unpadded) tokens per model batch.",
                                      buckets=_TOKEN_BUCKETS, registry=r)
        self.padded_tokens = Counter("livetopic_padded_tokens", "Tokens fed to the model, padding included.",
                                     registry=r)
        self.inference_seconds = Histogram("livetopic_inference_seconds", "Model forward time per batch.",
                                           buckets=_LATENCY_BUCKETS, registry=r)
        self.end_to_end_seconds = Histogram("livetopic_end_to_end_seconds",
                                            "From the input entry id's time to publish.",
                                            buckets=_LATENCY_BUCKETS, registry=r)
        self.pending = Gauge("livetopic_pending_comments", "Comments read by this worker and not yet acked.",
                             registry=r)
        self.model_info = Gauge("livetopic_model_info", "The model version being served, and on what device in "
                                "what dtype (value 1).", ["name", "version", "device", "dtype"], registry=r)
        self.labels = Counter("livetopic_label", "Labels published, by label and channel (topic heat; channel is "
                              "one of --metrics-channels, else 'other'; 'all' when none are listed).",
                              ["label", "channel"], registry=r)
        self.reloads = Counter("livetopic_model_reloads", "Model reload attempts, by result.", ["result"],
                               registry=r)
        self.redis_errors = Counter("livetopic_redis_errors", "Redis command failures (retried).", registry=r)
        self.reclaimed = Counter("livetopic_reclaimed", "Entries reclaimed from other consumers.", registry=r)
        self.duplicates_suppressed = Counter("livetopic_duplicates_suppressed",
                                             "Results not published because another consumer acked first.",
                                             registry=r)
        self.ready = Gauge("livetopic_ready", "1 when the model is loaded and Redis is reachable.", registry=r)
        self.redis_out_of_memory = Gauge("livetopic_redis_out_of_memory",
                                         "1 while Redis refuses writes at its maxmemory limit (the worker backs "
                                         "off; what it holds stays pending).", registry=r)
        self.group_recreated = Counter("livetopic_group_recreated",
                                       "Times this worker recreated a lost consumer group (destroyed, or Redis "
                                       "lost its data); comments finished after its resume mark may repeat.",
                                       registry=r)
        for outcome in ("classified", "dead_lettered"):
            self.comments.labels(outcome=outcome)
        for result in ("ok", "failed"):
            self.reloads.labels(result=result)

    def set_model(self, name: str, version: int, device: str, dtype: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name=name, version=str(version), device=device, dtype=dtype).set(1)

    def channel_label(self, channel: str | None) -> str:
        """The ``channel`` label value for a comment's channel: bounded by the allowlist."""
        if not self._channels:
            return "all"
        return channel if channel in self._channels else "other"
