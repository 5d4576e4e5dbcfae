"""The model repository on disk: ``REPO/1/``, ``REPO/2/``… each a Hugging Face directory plus a
``livetopic.json`` manifest written last. This module is the only writer of that layout.

A version is *complete* when its manifest exists and parses and every file it lists is there with its size
(:mod:`.contents`); half-written versions (still in a ``.tmp-*`` directory, or renamed but without manifest) are
invisible to readers. A copy that writes the manifest before the files (``cp -r``, ``rsync``, ``kubectl cp``
choose their own order) breaks that contract: such a version is seen as incomplete until its last file lands.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import RepositoryError
from ..text import Mode, Preprocessor
from .contents import FileRecord, record_files
from .heads import HeadSpec, check_heads
from .ngrams import NgramSpec
from .stages import StageSpec, check_stages

__all__ = [
    "CANDIDATES_DIR",
    "MANIFEST_NAME",
    "CopyOf",
    "Manifest",
    "PreprocessingSpec",
    "Source",
    "latest_version",
    "list_versions",
    "publish_version",
    "read_manifest",
    "remove_version",
    "resolve_version",
    "version_dirs",
]

MANIFEST_NAME = "livetopic.json"
CANDIDATES_DIR = "candidates"  # REPO/candidates/<n>: versions kept back by the publish gate (workers never see them)
ProblemType = Literal["multi_label_classification", "single_label_classification"]


class PreprocessingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = "raw"
    lowercase: bool = True
    normalize_whitespace: bool = True

    def build(self) -> Preprocessor:
        return Preprocessor(self.mode, self.lowercase, self.normalize_whitespace)


class Source(BaseModel):
    """Where a version's files came from: a Hub repository at a commit (``model pull``) or a local Hugging Face
    directory (``model add``), each file as it was there (size, sha256), and what livetopic changed."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["hub", "directory"]
    hub_id: str | None = None
    revision: str | None = None  # as asked: a branch, a tag or a commit
    commit: str | None = None  # the commit it resolved to
    path: str | None = None  # the directory (model add)
    files: dict[str, FileRecord] = Field(default_factory=dict)  # as published there, before any conversion
    converted: dict[str, str] = Field(default_factory=dict)  # e.g. pytorch_model.bin → model.safetensors
    labels: list[str] = Field(default_factory=list)  # the labels as published there, when --labels renamed them

    def describe(self) -> str:
        if self.kind == "hub":
            return f"hub {self.hub_id}@{(self.commit or self.revision or '?')[:12]}"
        return f"directory {self.path}"


class CopyOf(BaseModel):
    """A version whose files are those of an earlier version (``model rollback``) or of a candidate
    (``model promote``), published again under the next number."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["version", "candidate"]
    number: int = Field(ge=1)

    def describe(self) -> str:
        return f"rollback to {self.number}" if self.kind == "version" else f"promoted candidate {self.number}"


class Manifest(BaseModel):
    """What a version promises: its labels, how to threshold them and how to preprocess text."""

    model_config = ConfigDict(extra="forbid")

    name: str = "livetopic"
    version: int = 0
    labels: list[str] = Field(min_length=1)
    problem_type: ProblemType = "multi_label_classification"
    thresholds: dict[str, float] = Field(default_factory=dict)
    preprocessing: PreprocessingSpec = Field(default_factory=PreprocessingSpec)
    max_length: int = Field(default=64, ge=8, le=4096)
    metrics: dict[str, Any] = Field(default_factory=dict)
    data_fingerprint: str | None = None
    training_args: dict[str, Any] = Field(default_factory=dict)
    # Label agreement of reduced precisions (bfloat16, int8…) with float32, measured on validation
    # comments when the version was published; ``dtype=auto`` skips any below 99.5%.
    dtype_agreement: dict[str, float] = Field(default_factory=dict)
    # In-process comments/s of each engine ("backend:dtype") measured with the agreement, per CPU class
    # (precision.cpu_class: "amx", "vnni", "no-vnni") of the machine that published it; ``auto`` ranks by it.
    engine_rates: dict[str, dict[str, float]] = Field(default_factory=dict)
    # A version whose label set differs from the one it replaces is refused by running workers unless this
    # says the change is intended (``livetopic train --change-labels``).
    labels_change_intended: bool = False
    # Every file published with the version (relative path → size and sha256), the ``.onnx/`` graphs included:
    # a worker serves the version once all are there (complete) and each has its sha256 (intact). Empty in
    # manifests of versions published before the list existed.
    files: dict[str, FileRecord] = Field(default_factory=dict)
    source: Source | None = None  # pulled from a Hub or added from a directory (None: trained or made here)
    copy_of: CopyOf | None = None  # published again from an earlier version or a candidate
    # A pipeline version (:mod:`.stages`): its stages in order; ``labels`` are then the first stage's.
    pipeline: list[StageSpec] = Field(default_factory=list)
    # A multi-task version (:mod:`.heads`): how its outputs (``labels``, in order) split into heads served from one
    # forward pass; the first head's labels are the result's ``labels``.
    heads: list[HeadSpec] = Field(default_factory=list)
    # An n-gram member blended with the network's probabilities (:mod:`.ngrams`), of a multi-label version.
    ngrams: NgramSpec | None = None
    created_at: float = Field(default_factory=time.time)

    @model_validator(mode="after")
    def _check(self) -> Manifest:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")
        unknown = set(self.thresholds) - set(self.labels)
        if unknown:
            raise ValueError(f"thresholds for unknown labels: {sorted(unknown)}")
        for label, value in self.thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"threshold of {label!r} must be in [0, 1], got {value}")
        for dtype, value in self.dtype_agreement.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"dtype_agreement of {dtype!r} must be in [0, 1], got {value}")
        check_stages(self.pipeline)
        if self.heads and self.pipeline:
            raise ValueError("a version is a pipeline or a multi-task model, not both")
        check_heads(self.heads, self.labels)
        if self.ngrams is not None and (self.heads or self.problem_type != "multi_label_classification"):
            raise ValueError("an n-gram member blends with a multi-label version's one head only")
        return self

    @property
    def served_labels(self) -> list[str]:
        """The labels of the result's ``labels`` field: the first head's of a multi-task version, else all."""
        return list(self.heads[0].labels) if self.heads else list(self.labels)

    def threshold(self, label: str) -> float:
        return self.thresholds.get(label, 0.5)


def version_dirs(repo: Path) -> list[tuple[int, Path]]:
    """(number, directory) of every ``REPO/<n>``, complete or not, ascending."""
    if not repo.is_dir():
        return []
    found = []
    for child in repo.iterdir():
        if child.is_dir() and child.name.isdigit():
            found.append((int(child.name), child))
    return sorted(found)


def list_versions(repo: Path | str) -> list[int]:
    """Complete versions (manifest present), ascending."""
    return [n for n, path in version_dirs(Path(repo)) if (path / MANIFEST_NAME).is_file()]


def latest_version(repo: Path | str) -> int | None:
    versions = list_versions(repo)
    return versions[-1] if versions else None


def read_manifest(version_dir: Path | str) -> Manifest:
    path = Path(version_dir) / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RepositoryError(f"{path}: manifest missing (version incomplete)") from exc
    except (OSError, ValueError) as exc:
        raise RepositoryError(f"{path}: unreadable manifest: {exc}") from exc
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise RepositoryError(f"{path}: invalid manifest: {exc}") from exc


def resolve_version(path: Path | str, version: int | None = None) -> tuple[Path, int]:
    """``REPO`` (highest complete, or ``version``) or ``REPO/N`` → (version directory, number)."""
    path = Path(path)
    if (path / MANIFEST_NAME).is_file() and path.name.isdigit():
        return path, int(path.name)
    if version is None:
        version = latest_version(path)
        if version is None:
            raise RepositoryError(f"{path}: no complete model version (expected {path}/<n>/{MANIFEST_NAME})")
    vdir = path / str(version)
    if not (vdir / MANIFEST_NAME).is_file():
        raise RepositoryError(f"{path}: version {version} is missing or incomplete")
    return vdir, version


FILE_MODE, DIR_MODE = 0o644, 0o755  # a version is readable by every user (the images run as their own user)


def _make_readable(root: Path) -> None:
    """Files 0644 and directories 0755: weights saved by safetensors are owner-only (0600), temporary
    directories 0700, and the worker may run as another user than the trainer."""
    os.chmod(root, DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), DIR_MODE)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), FILE_MODE)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_version(repo: Path | str, number: int) -> None:
    """Delete ``REPO/<number>``: renamed out of sight first (readers never see half a version), then removed."""
    repo = Path(repo)
    target = repo / str(number)
    if not (target.is_dir() or target.is_symlink()):
        raise RepositoryError(f"{repo}: there is no version {number}")
    hidden = Path(tempfile.mkdtemp(prefix=f".removed-{number}-", dir=repo))
    os.replace(target, hidden / "version")
    _fsync_dir(repo)
    if (hidden / "version").is_symlink():
        (hidden / "version").unlink()
    shutil.rmtree(hidden)


def publish_version(repo: Path | str, write: Callable[[Path], None], manifest: Manifest) -> int:
    """Publish the next version of ``repo`` atomically and return its number.

    ``write(tmpdir)`` saves the Hugging Face files (safetensors weights, config, tokenizer). They are
    fsynced and listed in the manifest (size, sha256), the directory is renamed to ``REPO/<n>`` and the manifest
    is written last (itself via a temporary file and rename), so readers never see a half-written version.
    """
    repo = Path(repo)
    repo.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=repo))
    try:
        write(tmp)
        if any(tmp.glob("*.bin")) or any(tmp.glob("*.pt")) or any(tmp.glob("*.pkl")):
            raise RepositoryError("refusing to publish pickle weights; save with safetensors")
        _make_readable(tmp)
        _fsync_tree(tmp)
        files = record_files(tmp)
        for _attempt in range(100):
            existing = [n for n, _ in version_dirs(repo)]
            number = (existing[-1] if existing else 0) + 1
            target = repo / str(number)
            try:
                target.mkdir()  # reserve the number; fails if another publisher took it
            except FileExistsError:
                continue
            os.replace(tmp, target)  # an empty directory is replaced atomically
            break
        else:  # pragma: no cover - needs 100 concurrent publishers
            raise RepositoryError(f"{repo}: could not reserve a version number")
        _fsync_dir(repo)
        final = manifest.model_copy(update={"version": number, "files": files})
        tmp_manifest = target / (MANIFEST_NAME + ".tmp")
        with open(tmp_manifest, "w", encoding="utf-8") as fh:
            fh.write(final.model_dump_json(indent=2))
            fh.flush()
            os.fchmod(fh.fileno(), FILE_MODE)
            os.fsync(fh.fileno())
        os.replace(tmp_manifest, target / MANIFEST_NAME)
        _fsync_dir(target)
        return number
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
