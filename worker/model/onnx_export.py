"""A version as an ONNX graph for ONNX Runtime: exported once from its safetensors weights, with ORT's
transformer fusions (float32: attention, GELU, embeddings), and for int8 the weights quantised per output channel
first (dynamic quantisation), then the fusions that still match (GELU): faster on the 2-core AMX Xeon than fusing
first (QAttention), 257 against 227 comments/s for bert-base. Residual adds and their layer norms stay unfused:
ORT 1.31's SkipLayerNormalization takes 4.7 times as long on CPU (docs/PERFORMANCE.md, "Where the time goes").
The int8 graph takes packed rows (several comments a row, :mod:`.traced`) where the architecture has a packed
forward (BERT, RoBERTa); the float32 graph stays padded, the shape ORT's attention fusion matches.

A version published by livetopic (``model pull``, ``model add``, ``model init``, ``train``, ``promote``,
``rollback``) carries its graphs in ``REPO/<n>/onnx/model-<dtype>.onnx``, made once at publication
(:mod:`.export`) and listed in its manifest like every other file: a worker serves such a graph when it has the
listed sha256, whatever library versions made it, and exports nothing. What follows is for versions without one.

The graph is cached beside the version (``REPO/<n>/.onnx/``) under a name that holds a hash of the weights
and config and the versions of the exporter, onnx and ONNX Runtime, so a changed file or library makes a new
export and never serves a stale one. A worker that cannot write the repository uses the user's cache directory,
then the system's temporary directory.

A cached graph is served only once verified, because whoever can write a cache directory decides what a worker
serves:

- **Trusted places.** The user's cache and the temporary directory are created 0700 and used only while they are
  real directories (not symlinks) owned by this user that no one else can write; beside the version, the folder
  may belong to the version's owner too (the trainer leaves graphs there), and no one may write it who cannot
  write the version. Any other is ignored with a WARNING saying why (a planted ``/tmp/livetopic-onnx-<uid>``).
- **A recorded sha256.** An export writes ``<graph>.sha256`` before it renames the graph into place; a graph is
  served only when it has that sha256 (else the one the version's manifest lists for it: a graph published with
  the version). A graph without a record, or with another sha256, is never served: WARNING, exported again.

Files are written to a temporary name and renamed (readers never see half a graph). Two workers exporting at
once write the same bytes; if an export were not reproducible, the loser's record would not match the winner's
graph and the next worker would export again (never serve it).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ModelError, RepositoryError
from .contents import CACHE_DIR, sha256_of
from .repository import read_manifest
from .traced import export_network

__all__ = [
    "EXPORT_OPSET",
    "ONNX_DIR",
    "PUBLISHED_DIR",
    "cache_key",
    "cache_roots",
    "onnx_graph",
    "published_file",
    "published_graph",
    "published_name",
    "quiet",
    "recorded_sha256",
    "trusted_cache",
    "verified",
    "write_verified",
]

log = logging.getLogger(__name__)

ONNX_DIR = CACHE_DIR  # beside the weights, inside the version directory
PUBLISHED_DIR = "onnx"  # the graphs published with the version, listed in its manifest
RECORD_SUFFIX = ".sha256"
_RECIPE = "5"  # bump when the steps below (or the traced network, :mod:`.traced`) change what they write
EXPORT_OPSET = 17


def _library_versions() -> str:
    import onnx
    import onnxruntime
    import torch
    import transformers

    return (
        f"torch {torch.__version__}|onnx {onnx.__version__}|onnxruntime {onnxruntime.__version__}|"
        f"transformers {transformers.__version__}|recipe {_RECIPE}|opset {EXPORT_OPSET}"
    )


def cache_key(model_dir: Path, dtype: str) -> str:
    """Hash of the weights, the config, the dtype and the library versions (16 hex digits)."""
    digest = hashlib.sha256(f"{dtype}|{_library_versions()}".encode())
    for path in [*sorted(model_dir.glob("*.safetensors")), model_dir / "config.json"]:
        digest.update(f"|{path.name}|".encode())
        with open(path, "rb") as fh:
            while block := fh.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()[:16]


def cache_roots(model_dir: Path) -> list[Path]:
    """Where graphs are looked for and written, in order: beside the version, the user's cache, the temp dir."""
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "livetopic" / "onnx"
    return [model_dir / ONNX_DIR, user, Path(tempfile.gettempdir()) / f"livetopic-onnx-{os.getuid()}"]


class _Untrusted(Exception):
    """A cache directory whose graphs could have been written by someone else."""


def _check_trusted(root: Path, model_dir: Path) -> None:
    """Raise :class:`_Untrusted` (saying why) unless graphs in ``root`` can only come from this user (or, beside
    the version, from whoever may write the version); a ``root`` not made yet is fine."""
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise _Untrusted(
            "a symlink (its graphs could come from anywhere)" if stat.S_ISLNK(st.st_mode) else "not a directory"
        )
    me = os.geteuid()
    if st.st_mode & stat.S_IWOTH:
        raise _Untrusted(f"writable by every user (mode {stat.S_IMODE(st.st_mode):o})")
    if root != model_dir / ONNX_DIR:
        if st.st_uid != me:
            raise _Untrusted(f"not owned by this user (uid {me}) but by uid {st.st_uid}")
        if st.st_mode & stat.S_IWGRP:
            raise _Untrusted(f"writable by its group (mode {stat.S_IMODE(st.st_mode):o})")
        return
    version = os.stat(model_dir)
    if st.st_uid not in (me, version.st_uid):
        raise _Untrusted(f"not owned by this user (uid {me}) or the version's owner but by uid {st.st_uid}")
    if st.st_mode & stat.S_IWGRP and not (version.st_mode & stat.S_IWGRP and version.st_gid == st.st_gid):
        raise _Untrusted(f"writable by group {st.st_gid}, which cannot write the version")


def _trusted_roots(model_dir: Path) -> tuple[list[Path], list[str]]:
    """(the cache places to use, in order; why the others are not used)."""
    roots, problems = [], []
    for root in cache_roots(model_dir):
        try:
            _check_trusted(root, model_dir)
        except _Untrusted as exc:
            log.warning("not using the ONNX cache %s: %s", root, exc)
            problems.append(f"{root}: {exc}")
            continue
        except OSError as exc:
            problems.append(f"{root}: {exc}")
            continue
        roots.append(root)
    return roots, problems


def trusted_cache(model_dir: Path) -> Path | None:
    """The version's own cache folder (``model_dir/.onnx``) when only those who may write the version can write
    it (it need not exist yet); None (a WARNING) otherwise."""
    root = model_dir / ONNX_DIR
    try:
        _check_trusted(root, model_dir)
    except _Untrusted as exc:
        log.warning("not using the cache %s: %s", root, exc)
        return None
    return root


def write_verified(built: Path, target: Path) -> None:
    """Move ``built`` to ``target`` with the record of its sha256 written first (both renamed into place)."""
    record = built.with_name(built.name + ".record")
    record.write_text(sha256_of(built) + "\n", encoding="ascii")
    os.replace(record, target.with_name(target.name + RECORD_SUFFIX))
    os.replace(built, target)


def recorded_sha256(graph: Path, model_dir: Path) -> str | None:
    """The sha256 recorded for ``graph``: its ``.sha256`` record, else (a graph published inside the version)
    the one the version's manifest lists; None when there is neither."""
    try:
        recorded = graph.with_name(graph.name + RECORD_SUFFIX).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        recorded = ""
    if len(recorded) == 64 and all(c in "0123456789abcdef" for c in recorded):
        return recorded
    if graph.parent != model_dir / ONNX_DIR:
        return None
    try:
        listed = read_manifest(model_dir).files.get(f"{ONNX_DIR}/{graph.name}")
    except RepositoryError:
        return None
    return listed.sha256 if listed else None


def verified(graph: Path, model_dir: Path) -> bool:
    """Whether the cached ``graph`` has the sha256 recorded when it was written (a WARNING when not)."""
    expected = recorded_sha256(graph, model_dir)
    if expected is None:
        log.warning(
            "%s: no sha256 recorded for this ONNX graph (written by an older livetopic, or not by "
            "livetopic): not served; exporting again",
            graph,
        )
        return False
    actual = sha256_of(graph)
    if actual != expected:
        log.warning(
            "%s: this ONNX graph's sha256 %s... is not the %s... recorded when it was written (changed "
            "since, or planted): not served; exporting again",
            graph,
            actual[:16],
            expected[:16],
        )
        return False
    return True


def published_name(dtype: str) -> str:
    return f"model-{dtype}.onnx"


def published_file(model_dir: Path, relative: str) -> Path | None:
    """``model_dir/relative`` (a file published inside the version: a graph), when the version's manifest lists it
    and it has the listed sha256 (a WARNING when it is there but does not); None otherwise."""
    path = model_dir / relative
    if not path.is_file():
        return None
    try:
        listed = read_manifest(model_dir).files.get(relative)
    except RepositoryError:
        return None
    if listed is None:
        log.warning("%s: not listed in the version's manifest: not served", path)
        return None
    if sha256_of(path) != listed.sha256:
        log.warning("%s: does not have the sha256 its manifest lists (changed after publication): not served", path)
        return None
    return path


def published_graph(model_dir: Path, dtype: str) -> Path | None:
    """The ONNX graph published inside the version for ``dtype`` (see :func:`published_file`)."""
    return published_file(model_dir, f"{PUBLISHED_DIR}/{published_name(dtype)}")


def onnx_graph(model_dir: Path, dtype: str, *, published: bool = True) -> Path:
    """The ONNX graph of the version in ``model_dir`` for ONNX Runtime in ``dtype`` (float32 or int8): the one
    published with it (unless ``published`` is False), a cached one that is verified, or exported now (seconds to
    a minute for a bert-base-sized model)."""
    if dtype not in ("float32", "int8"):
        raise ModelError(f"ONNX Runtime runs float32 and int8 here, not {dtype}")
    graph = published_graph(model_dir, dtype) if published else None
    if graph is not None:
        return graph
    try:
        name = f"model-{dtype}-{cache_key(model_dir, dtype)}.onnx"
    except OSError as exc:
        raise ModelError(f"{model_dir}: cannot read the weights: {exc}") from exc
    roots, problems = _trusted_roots(model_dir)
    for root in roots:
        try:
            if (root / name).is_file() and verified(root / name, model_dir):
                return root / name
        except OSError as exc:
            log.warning("%s: cannot read the cached ONNX graph (%s); exporting again", root / name, exc)
    for root in roots:
        try:
            return _export_into(root, name, model_dir, dtype)
        except (OSError, _Untrusted) as exc:  # read-only, full, not ours…: try the next place
            log.info("cannot write the ONNX export to %s (%s); trying the next place", root, exc)
            problems.append(f"{root}: {exc}")
    raise ModelError(f"{model_dir}: nowhere to write the ONNX export: {'; '.join(problems)}")


def _export_into(root: Path, name: str, model_dir: Path, dtype: str) -> Path:
    """Export into ``root`` (created private: 0700, or 0755 beside the version, and checked again once made):
    the record of the graph's sha256 first, then the graph, each renamed into place."""
    root.mkdir(parents=True, exist_ok=True, mode=0o755 if root == model_dir / ONNX_DIR else 0o700)
    _check_trusted(root, model_dir)  # made by someone else between the look and the mkdir
    with tempfile.TemporaryDirectory(prefix=".export-", dir=root) as work:
        started = time.perf_counter()
        built = _build(model_dir, dtype, Path(work))
        write_verified(built, root / name)
    log.info("exported %s to ONNX (%s) in %.1f s: %s", model_dir, dtype, time.perf_counter() - started, root / name)
    return root / name


def _build(model_dir: Path, dtype: str, work: Path) -> Path:
    """Export, (quantise), optimise into ``work``; returns the final file, fsynced."""
    raw = work / "exported.onnx"
    with quiet():  # int8 packs comments into rows (:mod:`.traced`); float32 stays padded for ORT's fused attention
        config = export_network(model_dir, raw, packed=dtype == "int8", opset=EXPORT_OPSET)
    source = raw
    if dtype == "int8":
        source = work / "quantised.onnx"
        _quantise(raw, source)
    final = work / "final.onnx"
    _optimise(source, final, config)
    with open(final, "rb") as fh:
        os.fsync(fh.fileno())
    return final


class _LibraryChatter(logging.Filter):
    """Drops the libraries' records up to WARNING logged by one thread (the exporting one)."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return (
            record.thread != self.thread
            or record.levelno > logging.WARNING
            or record.name.split(".")[0] in ("worker", "trainer")
        )


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The exporter, optimiser and quantiser log and warn about their work (each fusion, the legacy exporter's
    deprecation, tracer notes, "consider pre-processing"): keep that out of the worker's log and of warnings."""
    chatter = _LibraryChatter()
    root = logging.getLogger()
    # the root logger (the quantiser logs through it), every handler (the libraries' own loggers propagate to
    # them) and the last-resort handler (where nothing is configured)
    filtered: list[logging.Filterer] = [root, *root.handlers, *([logging.lastResort] if logging.lastResort else [])]
    for target in filtered:
        target.addFilter(chatter)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for target in filtered:
            target.removeFilter(chatter)


def _quantise(source: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with quiet():
            quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=True)
    except Exception as exc:
        raise ModelError(f"int8 quantisation of the ONNX graph failed: {type(exc).__name__}: {exc}") from exc


def _optimise(source: Path, out: Path, config: Any) -> None:
    """ORT's transformer fusions (``model_type="bert"`` covers BERT, DistilBERT and RoBERTa encoders)."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False  # see the module docstring
    heads = int(getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", 0) or 0)
    hidden = int(getattr(config, "hidden_size", None) or getattr(config, "dim", 0) or 0)
    try:
        with quiet():
            shape = {"num_heads": heads, "hidden_size": hidden, "opt_level": 0, "use_gpu": False}
            model = optimize_model(str(source), model_type="bert", optimization_options=options, **shape)
            model.save_model_to_file(str(out))
    except Exception as exc:
        raise ModelError(f"ONNX Runtime's transformer optimisation failed: {type(exc).__name__}: {exc}") from exc
