"""Find a version and load it, in named steps: locate, check the files, choose device and dtype, tokenizer,
backend, check the labels, smoke test."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import ModelError, RepositoryError
from .backends.base import Backend, config_labels, read_config
from .contents import check_complete, check_inside, check_intact
from .ngrams import NgramMember
from .precision import Engine, engine_threads, resolve_engine
from .repository import MANIFEST_NAME, Manifest, read_manifest, resolve_version
from .runtime import LoadedModel, Stage
from .stages import StageSpec
from .tokenizer import load_tokenizer

__all__ = [
    "check_files",
    "check_version",
    "load_backend",
    "load_model",
    "load_pipeline",
    "load_version",
    "locate_model",
    "stage_location",
]

log = logging.getLogger(__name__)

_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")


def _manifest_from_config(model_dir: Path) -> Manifest:
    """A plain Hugging Face directory (no livetopic.json): labels and problem type from config.json."""
    try:
        config = read_config(model_dir)
    except ModelError as exc:
        raise RepositoryError(f"{model_dir}: neither a model repository nor a model directory ({exc})") from exc
    labels = config_labels(config)
    multi = config.get("problem_type") == "multi_label_classification"
    return Manifest(
        name=model_dir.name,
        version=0,
        labels=labels,
        problem_type="multi_label_classification" if multi else "single_label_classification",
    )


def locate_model(path: Path | str, version: int | None = None) -> tuple[Path, Manifest, int]:
    """(directory, manifest, version number) of ``REPO`` (highest complete version, or ``version``), ``REPO/N``,
    a plain HF directory (number 0, its manifest made up from config.json), or a model directory with its manifest
    that is not a numbered version (a pipeline's stage: number 0)."""
    path = Path(path)
    if (path / "config.json").is_file() and not (path / MANIFEST_NAME).is_file():
        return path, _manifest_from_config(path), 0
    if (path / "config.json").is_file() and not path.name.isdigit():  # a pipeline's stage directory, by itself
        return path, read_manifest(path), 0
    vdir, number = resolve_version(path, version)
    return vdir, read_manifest(vdir), number


def check_files(model_dir: Path) -> None:
    """Refuse incomplete directories before transformers improvises (it can build an empty tokenizer)."""
    if not (model_dir / "config.json").is_file():
        raise ModelError(f"{model_dir}: config.json missing")
    if not any(model_dir.glob("*.safetensors")):
        found = "only pickle weights (*.bin)" if any(model_dir.glob("*.bin")) else "no weights"
        raise ModelError(f"{model_dir}: {found}; livetopic loads safetensors only")
    if not any((model_dir / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelError(f"{model_dir}: tokenizer files missing (expected one of {', '.join(_TOKENIZER_FILES)})")


def check_version(model_dir: Path, manifest: Manifest, number: int) -> None:
    """A version of a repository (``number`` > 0) stays inside it; the files its manifest lists are all there with
    their sizes, then with their sha256 (cheap checks first)."""
    if number > 0:
        check_inside(model_dir, model_dir.parent)
    if manifest.files:
        check_complete(model_dir, manifest.files)
        check_intact(model_dir, manifest.files)


def check_labels(model_dir: Path, manifest: Manifest, id2label: dict[int, str], num_labels: int) -> None:
    """The network's outputs are the manifest's labels: as many, and the same names where the config names
    them (``LABEL_<i>`` means unnamed)."""
    if num_labels != len(manifest.labels):
        raise ModelError(
            f"{model_dir}: label mismatch: model has {num_labels} outputs, "
            f"manifest names {len(manifest.labels)} labels {manifest.labels}"
        )
    named = [id2label.get(i, "") for i in range(num_labels)]
    if not all(n.startswith("LABEL_") for n in named) and named != list(manifest.labels):
        raise ModelError(f"{model_dir}: label mismatch: config.json names {named}, manifest {manifest.labels}")


def load_backend(model_dir: Path, engine: Engine, *, compile: bool = False) -> Backend:
    """The network of ``model_dir`` on ``engine`` (its backend module imported only when used)."""
    if engine.backend == "onnxruntime":
        from .backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model_dir, dtype_name=engine.dtype, threads=engine_threads())
    if engine.backend == "openvino":
        from .backends.openvino import OpenVinoBackend

        return OpenVinoBackend(model_dir, dtype_name=engine.dtype, threads=engine_threads())
    if engine.backend == "null":
        from .backends.null import NullBackend

        return NullBackend(model_dir)
    from .backends.torch import TorchBackend

    return TorchBackend(model_dir, device=engine.device, dtype_name=engine.dtype, compile=compile)


def _backend(model_dir: Path, manifest: Manifest, device: str, dtype: str, backend: str, compile: bool) -> Backend:
    engine = resolve_engine(device, dtype, backend, manifest.dtype_agreement, manifest.engine_rates)
    tried: set[Engine] = set()
    while True:
        try:
            return load_backend(model_dir, engine, compile=compile)
        except ModelError as exc:
            if backend != "auto" or engine.backend not in ("onnxruntime", "openvino"):
                raise
            tried.add(engine)
            # auto picked an engine that cannot serve this version (a network that does not export, a version
            # published without an OpenVINO model): the next that auto would pick, else PyTorch
            fallback = _next_engine(manifest, device, dtype, tried)
            log.warning(
                "%s: %s %s cannot serve this version (%s); serving it with %s %s instead",
                model_dir,
                engine.backend,
                engine.dtype,
                exc,
                fallback.backend,
                fallback.dtype,
            )
            engine = fallback


def _next_engine(manifest: Manifest, device: str, dtype: str, tried: set[Engine]) -> Engine:
    for backend in ("onnxruntime", "openvino"):
        try:
            engine = resolve_engine(device, dtype, backend, manifest.dtype_agreement, manifest.engine_rates)
        except ModelError:
            continue
        if engine not in tried:
            return engine
    return resolve_engine(device, dtype if dtype != "int8" else "auto", "torch", manifest.dtype_agreement)


def load_version(
    model_dir: Path,
    manifest: Manifest,
    number: int,
    *,
    device: str = "auto",
    dtype: str = "auto",
    backend: str = "auto",
    compile: bool = False,
) -> LoadedModel:
    """Load the version in ``model_dir`` as ``manifest`` describes it (no smoke test)."""
    check_version(model_dir, manifest, number)
    check_files(model_dir)
    tokenizer = load_tokenizer(model_dir)
    network = _backend(model_dir, manifest, device, dtype, backend, compile)
    check_labels(model_dir, manifest, network.id2label, network.num_labels)
    member = NgramMember.load(model_dir, manifest.ngrams, len(manifest.labels)) if manifest.ngrams else None
    return LoadedModel(model_dir, manifest, number, tokenizer, network, member)


def stage_location(version_dir: Path, spec: StageSpec) -> tuple[Path, Manifest, int]:
    """(directory, manifest, number) of a pipeline stage: a directory inside the version (its files are checked
    with the version's, so not again here: number 0), or the pinned version of another repository."""
    if spec.path is not None:
        stage_dir = version_dir / spec.path
        if not (stage_dir / MANIFEST_NAME).is_file():
            raise RepositoryError(f"{version_dir}: stage {spec.name!r}: no model in {spec.path}/ ({MANIFEST_NAME})")
        check_inside(stage_dir, version_dir)
        return stage_dir, read_manifest(stage_dir).model_copy(update={"files": {}}), 0
    assert spec.repo is not None and spec.version is not None
    repo = Path(spec.repo)
    if not repo.is_absolute():
        repo = version_dir.parent.parent / repo
    stage_dir, number = resolve_version(repo, spec.version)
    return stage_dir, read_manifest(stage_dir), number


def load_pipeline(version_dir: Path, manifest: Manifest, number: int, **engine: Any) -> LoadedModel:
    """Every stage of a pipeline version, each loaded and smoke-tested (one that fails fails the version): the
    first stage's model leading the others (:meth:`LoadedModel.lead`). ``engine``: as :func:`load_version`."""
    check_version(version_dir, manifest, number)
    loaded: list[tuple[StageSpec, LoadedModel]] = []
    for spec in manifest.pipeline:
        try:
            stage_dir, stage_manifest, stage_number = stage_location(version_dir, spec)
            model = load_version(stage_dir, stage_manifest, stage_number, **engine)
            model.smoke_test()
        except (ModelError, RepositoryError) as exc:
            raise type(exc)(f"{version_dir}: stage {spec.name!r} does not load: {exc}") from exc
        if (condition := spec.condition()) is not None:
            labels = dict((s.name, m.labels) for s, m in loaded)[condition.stage]
            if condition.label not in labels:
                raise ModelError(
                    f"{version_dir}: stage {spec.name!r}: {condition.stage} has no label "
                    f"{condition.label!r} (its labels: {labels})"
                )
        loaded.append((spec, model))
    (first_spec, first), rest = loaded[0], loaded[1:]
    if first.labels != list(manifest.labels):
        raise ModelError(
            f"{version_dir}: the manifest names the labels {manifest.labels}, its first stage "
            f"{first_spec.name!r} gives {first.labels}"
        )
    first.lead(manifest.name, number, first_spec.name, [Stage(s.name, m, s.condition()) for s, m in rest])
    return first


def load_model(
    path: Path | str,
    version: int | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    backend: str = "auto",
    compile: bool = False,
    smoke_test: bool = True,
) -> LoadedModel:
    """Load ``REPO`` (highest complete version, or ``version``), ``REPO/N``, or a plain HF directory."""
    vdir, manifest, number = locate_model(path, version)
    engine: dict[str, Any] = {"device": device, "dtype": dtype, "backend": backend, "compile": compile}
    if manifest.pipeline:
        model = load_pipeline(vdir, manifest, number, **engine)  # every stage smoke-tested
    else:
        model = load_version(vdir, manifest, number, **engine)
        if smoke_test:
            model.smoke_test()
    log.info(
        "loaded model %s from %s on %s/%s (%s)%s",
        model.tag,
        vdir,
        model.device,
        model.dtype_name,
        model.backend.description,
        f"; a pipeline: {model.stage_name}, then {', '.join(s.name for s in model.stages)}" if model.stages else "",
    )
    return model
