"""The repository's versions as a user manages them: which there are and which one workers serve, a candidate
promoted, a rollback, a removal. Every change is a publication (:func:`~.repository.publish_version`) or a
removal (:func:`~.repository.remove_version`): running workers meet a promoted or rolled-back version as the new
version it is and hot-reload it; numbers are never reused for other content while a version has them, history is
never renumbered.

- **Served**: workers serve the newest complete version (one that does not load is skipped: they serve the
  newest older one that does, and say so in their log and ``livetopic_model_versions_skipped``).
- **Rollback** publishes the files of an earlier version again under the next number (hard links where the file
  system allows: no space taken), with its manifest (labels, thresholds, metrics, source) and ``copy_of`` naming
  it. By default the version to go back to is the newest one below the served one that is not a copy of what is
  served (the version served before it), so a second rollback undoes the first.
- **Promote** publishes a candidate (``REPO/candidates/<n>``: a run the publish gate kept back) the same way,
  then removes it from the candidates.
- **Remove** deletes a version, never the served one.

The files copied are checked first (complete, intact, inside the repository), so a damaged version is never
published again under fresh checksums; a version whose labels differ from the served one's needs
``--change-labels``, as in ``train`` (running workers refuse an unannounced label change)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import RepositoryError
from .contents import CACHE_DIR, IncompleteVersion, check_complete, check_inside, check_intact
from .export import publish_graphs
from .repository import (
    CANDIDATES_DIR,
    MANIFEST_NAME,
    CopyOf,
    Manifest,
    publish_version,
    read_manifest,
    remove_version,
    version_dirs,
)

__all__ = [
    "Entry",
    "candidates",
    "labels_change",
    "link_files",
    "promote",
    "remove",
    "rollback",
    "served_version",
    "versions",
]


@dataclass(frozen=True)
class Entry:
    """A version (or candidate) directory: its manifest, why it cannot be served (if so), whether it is served."""

    number: int
    path: Path
    manifest: Manifest | None
    problem: str | None = None
    served: bool = False


def _entry(number: int, path: Path) -> Entry:
    try:
        manifest = read_manifest(path)
    except RepositoryError:
        return Entry(number, path, None, "no readable manifest (being published, or not a version)")
    try:
        check_complete(path, manifest.files)
    except IncompleteVersion:
        return Entry(number, path, manifest, "incomplete (files missing or short)")
    return Entry(number, path, manifest)


def versions(repo: Path) -> list[Entry]:
    """Every version of ``repo``, ascending; the newest complete one is marked served."""
    found = [_entry(n, p) for n, p in version_dirs(repo)]
    served = next((e.number for e in reversed(found) if e.problem is None), None)
    return [dataclasses.replace(e, served=e.number == served) for e in found]


def candidates(repo: Path) -> list[Entry]:
    return [_entry(n, p) for n, p in version_dirs(repo / CANDIDATES_DIR)]


def served_version(repo: Path) -> int | None:
    return next((e.number for e in versions(repo) if e.served), None)


def _verified(entry: Entry, repo: Path, what: str) -> Manifest:
    if entry.manifest is None or entry.problem is not None:
        raise RepositoryError(f"{what} cannot be published again: {entry.problem}")
    check_inside(entry.path, repo)
    check_intact(entry.path, entry.manifest.files)
    return entry.manifest


def labels_change(repo: Path, labels: list[str], intended: bool, what: str) -> bool:
    """Whether publishing ``labels`` changes the served version's label set (allowed only when ``intended``)."""
    served = served_version(repo)
    if served is None:
        return False
    theirs = read_manifest(repo / str(served)).served_labels
    if set(theirs) == set(labels):
        return False
    if not intended:
        raise RepositoryError(
            f"{what} has the labels {labels}, version {served} (served) has {theirs}; pass "
            "--change-labels if that is intended (running workers refuse an unannounced label "
            "change)"
        )
    return True


def link_files(source: Path, out: Path, *, manifest: bool = False) -> None:
    """The files of the version directory ``source`` into ``out`` as hard links where the file system allows
    (else copies); its manifest too when ``manifest``, a worker's ``.onnx/`` cache never."""
    for dirpath, _dirnames, filenames in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        if CACHE_DIR in rel.parts:
            continue  # a worker's cache of graphs, made again where needed
        for name in filenames:
            if rel == Path() and name == MANIFEST_NAME and not manifest:
                continue
            (out / rel).mkdir(parents=True, exist_ok=True)
            try:
                os.link(source / rel / name, out / rel / name)
            except OSError:  # another file system, or one without hard links
                shutil.copy2(source / rel / name, out / rel / name)


def _linked_copy(source: Path) -> Callable[[Path], None]:
    def write(out: Path) -> None:
        link_files(source, out)
        publish_graphs(out)  # a version published before graphs were: made now

    return write


def _publish_copy(repo: Path, source: Path, manifest: Manifest, copy_of: CopyOf, intended: bool) -> int:
    update = {"copy_of": copy_of, "labels_change_intended": intended, "created_at": time.time()}
    return publish_version(repo, _linked_copy(source), manifest.model_copy(update=update))


def promote(repo: Path, number: int, *, change_labels: bool = False) -> int:
    """Publish candidate ``number`` as the next version of ``repo``; returns its number."""
    found = {e.number: e for e in candidates(repo)}
    if number not in found:
        raise RepositoryError(f"{repo}: there is no candidate {number} (`livetopic model list` shows them)")
    manifest = _verified(found[number], repo, f"candidate {number}")
    intended = labels_change(
        repo, manifest.served_labels, change_labels or manifest.labels_change_intended, f"candidate {number}"
    )
    published = _publish_copy(repo, found[number].path, manifest, CopyOf(kind="candidate", number=number), intended)
    remove_version(repo / CANDIDATES_DIR, number)
    return published


def _origin(number: int, by_number: dict[int, Entry]) -> int:
    """The version whose files ``number``'s are, following rollbacks."""
    seen = set()
    while number in by_number and number not in seen:
        seen.add(number)
        manifest = by_number[number].manifest
        copy_of = manifest.copy_of if manifest is not None else None
        if copy_of is None or copy_of.kind != "version":
            break
        number = copy_of.number
    return number


def _rollback_target(found: list[Entry], served: Entry) -> int:
    by_number = {e.number: e for e in found}
    origin = _origin(served.number, by_number)
    for entry in reversed(found):
        if entry.number < served.number and entry.problem is None and _origin(entry.number, by_number) != origin:
            return entry.number
    raise RepositoryError(f"no version before {served.number} to roll back to")


def rollback(repo: Path, to: int | None = None, *, change_labels: bool = False) -> tuple[int, int]:
    """Make version ``to`` (default: the one served before the served one) the served one again, published
    anew; returns (the new number, ``to``)."""
    found = versions(repo)
    served = next((e for e in found if e.served), None)
    if served is None:
        raise RepositoryError(f"{repo}: no version is served yet, so there is nothing to roll back")
    to = _rollback_target(found, served) if to is None else to
    entry = next((e for e in found if e.number == to), None)
    if entry is None:
        raise RepositoryError(f"{repo}: there is no version {to}")
    if to == served.number:
        raise RepositoryError(f"version {to} is the one served already")
    manifest = _verified(entry, repo, f"version {to}")
    intended = labels_change(repo, manifest.labels, change_labels, f"version {to}")
    return _publish_copy(repo, entry.path, manifest, CopyOf(kind="version", number=to), intended), to


def remove(repo: Path, number: int, *, candidate: bool = False) -> None:
    """Delete version ``number`` (or candidate ``number``); never the served version."""
    if candidate:
        if number not in {e.number for e in candidates(repo)}:
            raise RepositoryError(f"{repo}: there is no candidate {number}")
        remove_version(repo / CANDIDATES_DIR, number)
        return
    if number == served_version(repo):
        raise RepositoryError(
            f"version {number} is the one workers serve; publish or roll back to another "
            "first (`livetopic model rollback`)"
        )
    remove_version(repo, number)
