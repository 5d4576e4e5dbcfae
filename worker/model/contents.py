"""What a version directory holds, checked.

- **The file list.** A version's manifest lists every file published with it (size and sha256), written by
  :func:`~worker.model.repository.publish_version`. A version is *complete* when every listed file is there with
  its size; its files are *intact* when each has its sha256. Versions published before manifests had the list
  are neither (they are loaded as they are).
- **Inside the repository.** A version directory, or anything in it, that is a symlink leading out of the model
  repository is refused: what is served is what the repository holds.
- **The fingerprint** of a version: every file's name, size, modification time, inode and symlink target. A
  worker that refused a version tries it again once its fingerprint changes (any file added, removed, replaced
  or rewritten).

The ``.onnx/`` folder of a version is a cache of graphs derived from its weights (:mod:`.onnx_export`): workers
write it, so it takes no part in completeness, checksums or the fingerprint; a graph from it is checked when it
is used (against its own record, else the manifest's). The ``onnx/`` folder holds the graphs published with the
version (:mod:`.export`): a part of it like any other file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..errors import RepositoryError

__all__ = [
    "CACHE_DIR",
    "FileRecord",
    "Fingerprint",
    "IncompleteVersion",
    "OutsideRepository",
    "check_complete",
    "check_inside",
    "check_intact",
    "fingerprint",
    "record_files",
    "sha256_of",
]

CACHE_DIR = ".onnx"
Fingerprint = tuple[tuple[str, int, int, int, str], ...]


class FileRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class IncompleteVersion(RepositoryError):
    """Files the manifest lists are missing or of another size: still being copied (the manifest came first), or
    damaged."""


class OutsideRepository(RepositoryError):
    """The version, or a file of it, is a symlink that leads out of the model repository."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path) -> list[str]:
    """Relative (POSIX) paths of the files under ``root``, sorted; symlinked directories are not descended."""
    out: list[str] = []
    for dirpath, _dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        out.extend((rel / name).as_posix() for name in filenames)
    return sorted(out)


def _cached(rel: str) -> bool:
    """A file of a worker's graph cache: the version's ``.onnx/``, or a pipeline stage's."""
    return CACHE_DIR in rel.split("/")[:-1]


def record_files(root: Path) -> dict[str, FileRecord]:
    """Every file under ``root`` with its size and sha256 (what a manifest lists at publication)."""
    return {rel: FileRecord(size=(root / rel).stat().st_size, sha256=sha256_of(root / rel)) for rel in _files(root)}


def check_complete(version_dir: Path, files: Mapping[str, FileRecord]) -> None:
    """Raise :class:`IncompleteVersion` unless every listed file (the ``.onnx/`` cache aside) is there with its
    size."""
    wrong = []
    for rel, record in files.items():
        if _cached(rel):
            continue
        try:
            size = (version_dir / rel).stat().st_size
        except OSError:
            wrong.append(f"{rel} is missing")
            continue
        if size != record.size:
            wrong.append(f"{rel} has {size:,} bytes, the manifest lists {record.size:,}")
    if wrong:
        shown = "; ".join(wrong[:3]) + (f"; and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        raise IncompleteVersion(
            f"{version_dir}: incomplete: {shown} (still being copied, with the manifest first, "
            "or damaged: a version is complete once every file its manifest lists is there)"
        )


def check_intact(version_dir: Path, files: Mapping[str, FileRecord]) -> None:
    """Raise :class:`RepositoryError` when a listed file (the ``.onnx/`` cache aside) no longer has its sha256."""
    for rel, record in files.items():
        if not _cached(rel) and sha256_of(version_dir / rel) != record.sha256:
            raise RepositoryError(
                f"{version_dir}: {rel} does not have the sha256 its manifest lists (changed or "
                "damaged after publication)"
            )


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_inside(version_dir: Path, repo: Path) -> None:
    """Raise :class:`OutsideRepository` when ``version_dir`` or anything in it resolves outside ``repo``."""
    root = repo.resolve()
    target = version_dir.resolve()
    if not _inside(target, root):
        raise OutsideRepository(
            f"{version_dir}: refused: it is a symlink to {target}, outside the model repository "
            f"{root} (a version must be inside the repository; copy it in)"
        )
    for dirpath, dirnames, filenames in os.walk(version_dir):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            if path.is_symlink() and not _inside(path.resolve(), root):
                raise OutsideRepository(
                    f"{version_dir}: refused: {path.relative_to(version_dir)} is a symlink to "
                    f"{path.resolve()}, outside the model repository {root}"
                )


def fingerprint(version_dir: Path) -> Fingerprint:
    """Name, size, modification time, inode and symlink target of each file of ``version_dir`` (the ``.onnx/``
    cache aside), and of the directory itself; files that vanish while it looks are left out."""
    try:  # the directory itself: which one it is (its times change with the .onnx/ cache)
        entries = [("", 0, 0, version_dir.stat().st_ino, os.readlink(version_dir) if version_dir.is_symlink() else "")]
    except OSError:
        return ()
    for rel in (r for r in _files(version_dir) if not _cached(r)):
        path = version_dir / rel
        try:
            st = path.stat()
            link = os.readlink(path) if path.is_symlink() else ""
        except OSError:
            continue
        entries.append((rel, st.st_size, st.st_mtime_ns, st.st_ino, link))
    return tuple(entries)
