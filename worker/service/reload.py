"""Watch the model repository and hand a validated new version to the service between batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

from ..errors import LivetopicError
from ..model.load import load_model
from ..model.repository import MANIFEST_NAME, latest_version, read_manifest
from ..model.runtime import LoadedModel
from .metrics import Metrics

__all__ = ["ModelWatcher"]

log = logging.getLogger(__name__)


class ModelWatcher:
    """Polls ``repo`` every ``interval_s`` (or when :meth:`poke` is called, e.g. on SIGHUP).

    A candidate is loaded and validated off the event loop (loads, labels as the manifest says, a smoke
    batch gives finite scores); only then is ``swap(model)`` called. A version that fails is logged,
    counted as ``livetopic_model_reloads_total{result="failed"}`` and not retried until its manifest
    changes; the current model keeps serving.
    """

    def __init__(self, repo: Path, *, current: Callable[[], LoadedModel | None],
                 swap: Callable[[LoadedModel], None], executor: Executor, metrics: Metrics,
                 interval_s: float, device: str, dtype: str, backend: str = "auto", compile: bool = False) -> None:
        self.repo, self.interval_s = repo, interval_s
        self._current, self._swap, self._executor, self._metrics = current, swap, executor, metrics
        self._device, self._dtype, self._backend, self._compile = device, dtype, backend, compile
        self._refused: dict[int, float] = {}  # version → manifest mtime when refused
        self._poked = asyncio.Event()

    def poke(self) -> None:
        self._poked.set()

    def _candidate(self) -> int | None:
        latest = latest_version(self.repo)
        current = self._current()
        if latest is None or (current is not None and latest <= current.version):
            return None
        try:
            mtime = (self.repo / str(latest) / MANIFEST_NAME).stat().st_mtime
        except OSError:
            return None
        if self._refused.get(latest) == mtime:
            return None
        return latest

    async def check(self) -> bool:
        """Try the newest version once; True if a new model was swapped in."""
        version = self._candidate()
        if version is None:
            return False
        vdir = self.repo / str(version)
        mtime = (vdir / MANIFEST_NAME).stat().st_mtime
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(self._executor, self._load, vdir)
        except LivetopicError as exc:
            self._refused[version] = mtime
            self._metrics.reloads.labels(result="failed").inc()
            log.error("model version %s refused, still serving %s: %s", version, self._tag(), exc)
            return False
        except Exception as exc:  # a bug or an unexpected library error must not stop serving either
            self._refused[version] = mtime
            self._metrics.reloads.labels(result="failed").inc()
            log.exception("model version %s refused (unexpected %s), still serving %s",
                          version, type(exc).__name__, self._tag())
            return False
        self._swap(model)
        self._metrics.reloads.labels(result="ok").inc()
        log.info("model reloaded: now serving %s", model.tag)
        return True

    def _load(self, vdir: Path) -> LoadedModel:
        current = self._current()
        manifest = read_manifest(vdir)
        if current is not None and manifest.labels != current.labels:
            log.warning("version %s changes the labels from %s to %s", vdir.name, current.labels, manifest.labels)
        return load_model(vdir, device=self._device, dtype=self._dtype, backend=self._backend, compile=self._compile)

    def _tag(self) -> str:
        current = self._current()
        return current.tag if current else "nothing"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.check()
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._poked.wait())}
            try:
                await asyncio.wait(waiters, timeout=self.interval_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            self._poked.clear()
