"""Watch the model repository: start on the newest version that loads, and hand a validated newer one to the
service between batches."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from ..errors import LivetopicError, ModelError, RepositoryError
from ..model.contents import Fingerprint, IncompleteVersion, OutsideRepository, fingerprint
from ..model.load import load_model
from ..model.repository import latest_version, list_versions, read_manifest
from ..model.runtime import LoadedModel
from .health import Health
from .metrics import Metrics

__all__ = ["LabelChangeRefused", "ModelWatcher"]

log = logging.getLogger(__name__)


class LabelChangeRefused(ModelError):
    """A version would change the label set and its manifest does not say the change is intended."""


def _reason(exc: BaseException) -> str:
    """The ``reason`` label of ``livetopic_model_versions_skipped`` for a version that raised ``exc``."""
    if isinstance(exc, IncompleteVersion):
        return "incomplete"
    if isinstance(exc, OutsideRepository):
        return "outside"
    return "refused" if isinstance(exc, LabelChangeRefused) else "failed"


@dataclass(frozen=True)
class Skipped:
    """A version not served, why, and its files when it was tried: it is tried again once they change."""

    reason: str
    error: str
    files: Fingerprint


class ModelWatcher:
    """Chooses the version to serve from ``repo``: at start the newest one that loads, then polling every
    ``interval_s`` (or when :meth:`poke` is called, e.g. on SIGHUP) for a newer one that loads.

    A candidate is loaded and validated off the event loop (inside the repository, complete and intact as its
    manifest lists, loads, labels as the manifest says, a smoke batch gives finite scores); only then is
    it served (:meth:`serve`). A version that fails is skipped, with a log line naming it and why, in
    ``livetopic_model_versions_skipped{reason}`` while it is newer than the one served, and in
    ``livetopic_model_reloads_total{result="failed"}`` when it was a reload; the next older version is tried,
    and the current model keeps serving. A skipped version is tried again as soon as any of its files changes
    (added, removed, rewritten). A version whose label set differs from the one served is refused the same way
    (``result="refused"``) unless its manifest says the change is intended (``labels_change_intended``:
    ``livetopic train --change-labels``): consumers of the output stream rely on the labels they know.
    """

    def __init__(
        self,
        repo: Path,
        *,
        executor: Executor,
        metrics: Metrics,
        health: Health,
        interval_s: float,
        device: str,
        dtype: str,
        backend: str = "auto",
        compile: bool = False,
        model: LoadedModel | None = None,
    ) -> None:
        self.repo, self.interval_s = repo, interval_s
        self._executor, self._metrics, self._health = executor, metrics, health
        self._device, self._dtype, self._backend, self._compile = device, dtype, backend, compile
        self._skipped: dict[int, Skipped] = {}
        self._poked = asyncio.Event()
        self.model = model  # the model served (admit reads it once per delivery: a swap lands between two)
        self.waiting: str | None = None  # why there is no model yet (readiness says it)

    def serve(self, model: LoadedModel) -> None:
        """Serve ``model`` from now on (on the event loop: what admit encodes next is scored by it)."""
        self.model = model
        self.waiting = None
        self._metrics.set_model(model.name, model.version, model.device, model.dtype_name, model.backend_name)
        self._health.model_served()

    def _absent(self, version: int | None) -> str | None:
        """Why ``repo`` has nothing to load yet (no complete version, or not the pinned one), or None."""
        if version is not None:
            return None if version in list_versions(self.repo) else f"waiting for version {version} in {self.repo}"
        if latest_version(self.repo) is not None or (self.repo / "config.json").is_file():
            return None
        return f"waiting for a first model version in {self.repo}"

    async def first_model(self, version: int | None, stop: asyncio.Event, executor: Executor) -> LoadedModel | None:
        """The model to start with: ``version``, else the newest version that loads (the ones skipped are named in
        a WARNING each). While the repository has none yet (a trainer Job still running, an empty volume, versions
        still being copied) wait for one, checking every ``interval_s`` and on :meth:`poke`; None if ``stop`` is
        set first. Raises when there are versions but none loads (or the pinned one does not)."""
        while True:
            reason = self._absent(version)
            if reason is None:
                try:
                    model = await self._first(version, executor)
                except IncompleteVersion as exc:  # the pinned version, still being copied
                    model, reason = None, str(exc)
                if model is not None:
                    self.waiting = None
                    return model
                reason = reason or self._nothing_loads()
            if reason != self.waiting:
                log.warning("%s (checking every %.0fs; not ready until a version loads)", reason, self.interval_s)
                self._health.model_waiting(reason)
            self.waiting = reason
            if await self._pause(stop):
                return None

    async def _first(self, version: int | None, executor: Executor) -> LoadedModel | None:
        if version is None and list_versions(self.repo):
            return await self._newest_loadable(0, executor, reloading=False)
        # the pinned version, or a plain Hugging Face directory given as the repository
        load = functools.partial(
            load_model,
            self.repo,
            version,
            device=self._device,
            dtype=self._dtype,
            backend=self._backend,
            compile=self._compile,
        )
        return await asyncio.get_running_loop().run_in_executor(executor, load)

    def _nothing_loads(self) -> str:
        """Why no version loaded at start: a reason to wait when they are all incomplete (still being copied);
        otherwise raises (a configuration fault: the worker exits 2)."""
        skipped = sorted(self._skipped.items(), reverse=True)
        said = "; ".join(f"{number} ({s.reason}: {s.error})" for number, s in skipped)
        if any(s.reason != "incomplete" for _, s in skipped):
            raise RepositoryError(f"no version of {self.repo} loads: {said}")
        return f"no complete model version in {self.repo} yet: {said}"

    async def _pause(self, stop: asyncio.Event) -> bool:
        """Wait ``interval_s``, or less when poked or stopped; True if stopping."""
        waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._poked.wait())}
        try:
            await asyncio.wait(waiters, timeout=self.interval_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._poked.clear()
        return stop.is_set()

    def poke(self) -> None:
        self._poked.set()

    def _candidates(self, floor: int) -> tuple[list[int], list[tuple[int, Fingerprint]]]:
        """(every complete version; the versions above ``floor`` to try, newest first, with their files): those
        never tried, and those skipped whose files have changed since. Runs in the executor (it reads the disk)."""
        versions = list_versions(self.repo)
        out = []
        for number in reversed(versions):
            if number <= floor:
                break
            files = fingerprint(self.repo / str(number))
            skipped = self._skipped.get(number)
            if skipped is None or skipped.files != files:
                out.append((number, files))
        return versions, out

    async def _newest_loadable(self, floor: int, executor: Executor, *, reloading: bool) -> LoadedModel | None:
        """The newest version above ``floor`` that loads (None if none does); the others are skipped."""
        loop = asyncio.get_running_loop()
        versions, candidates = await loop.run_in_executor(executor, self._candidates, floor)
        self._skipped = {n: s for n, s in self._skipped.items() if n in versions and n > floor}
        for number, files in candidates:
            try:
                model = await loop.run_in_executor(executor, self._load, number)
            except Exception as exc:  # a bug or an unexpected library error must not stop serving either
                self._skip(number, files, exc, reloading)
                continue
            self._skipped = {n: s for n, s in self._skipped.items() if n > number}
            self._count_skipped(number)
            if self._skipped and not reloading:
                log.warning(
                    "starting on model version %d, not the newest: %s",
                    number,
                    ", ".join(f"{n} skipped ({s.reason})" for n, s in sorted(self._skipped.items())),
                )
            return model
        self._count_skipped(floor)
        return None

    def _skip(self, number: int, files: Fingerprint, exc: Exception, reloading: bool) -> None:
        reason = _reason(exc)
        self._skipped[number] = Skipped(reason, str(exc), files)
        if reloading and reason in ("failed", "refused"):
            self._metrics.reloads.labels(result=reason).inc()
        unexpected = None if isinstance(exc, LivetopicError) else exc  # a bug: with its traceback
        said = f"unexpected {type(exc).__name__}: {exc}" if unexpected else str(exc)
        if reloading:
            log.log(
                logging.WARNING if reason == "incomplete" else logging.ERROR,
                "model version %d refused, still serving %s: %s (%s; tried again once its files change)",
                number,
                self._tag(),
                said,
                reason,
                exc_info=unexpected,
            )
        else:
            log.warning(
                "model version %d skipped (%s), trying an older one: %s (tried again once its files change)",
                number,
                reason,
                said,
                exc_info=unexpected,
            )

    def _count_skipped(self, served: int) -> None:
        counts = collections.Counter(s.reason for n, s in self._skipped.items() if n > served)
        self._metrics.set_skipped(counts)

    async def check(self) -> bool:
        """Try the versions newer than the one served once; True if a new model was swapped in."""
        current = self.model
        model = await self._newest_loadable(current.version if current else 0, self._executor, reloading=True)
        if model is None:
            return False
        self.serve(model)
        self._metrics.reloads.labels(result="ok").inc()
        log.info("model reloaded: now serving %s", model.tag)
        return True

    def _load(self, number: int) -> LoadedModel:
        vdir = self.repo / str(number)
        current = self.model
        manifest = read_manifest(vdir)
        if current is not None and set(manifest.served_labels) != set(current.labels):
            change = f"it changes the labels from {current.labels} to {manifest.served_labels}"
            if not manifest.labels_change_intended:
                raise LabelChangeRefused(
                    f"{change} and its manifest does not say the change is intended (publish "
                    "it with `livetopic train --change-labels`)"
                )
            log.warning("version %s: %s (intended, says its manifest)", vdir.name, change)
        return load_model(vdir, device=self._device, dtype=self._dtype, backend=self._backend, compile=self._compile)

    def _tag(self) -> str:
        return self.model.tag if self.model else "nothing"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.check()
            await self._pause(stop)
