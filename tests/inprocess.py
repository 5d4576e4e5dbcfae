"""Workers in the test process (cheap: no interpreter or torch start-up per worker), the one way every suite
makes them, and what tests read of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from worker.model.runtime import LoadedModel
from worker.service.worker import Worker
from worker.settings import load_settings


def make_worker(url: str, repo: Path, model: LoadedModel | None = None, **overrides: Any) -> Worker:
    """A worker on ``url`` serving ``repo``: short waits (5 ms batches, reclaim and reload polls every 0.2 s), any
    free metrics port, one torch thread. A ``model`` given (loaded once per session) is served pinned to its version,
    with no reload watcher; otherwise the worker loads the newest version of ``repo`` and watches for newer ones."""
    pinned = {"model_version": model.version} if model is not None else {}
    settings = load_settings(
        {
            "model_repo": repo,
            "metrics_port": 0,
            "group_start_id": "0",
            "max_wait_ms": 5,
            "claim_interval_s": 0.2,
            "reload_interval_s": 0.2,
            "torch_threads": 1,
            **pinned,
            **overrides,
        }
    )
    return Worker(settings, url, model=model)


def sample(worker: Worker, name: str, **labels: str) -> float:
    """The value of the series ``name{labels}`` of ``worker``'s metrics (``livetopic_comments_total``…); a series
    the worker does not expose is an error, not 0."""
    value = worker.metrics.registry.get_sample_value(name, labels)
    if value is None:
        raise KeyError(f"no series {name}{labels or ''}")
    return value
