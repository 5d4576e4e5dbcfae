"""A version as an OpenVINO int8 model: made once when the version is published, never by a worker.

NNCF's post-training quantisation (calibrated on comments: the trainer's validation comments, the admitted
model's, else the bundled sample) turns the version's network, traced into ONNX packed (several comments a row,
:mod:`.traced`) where its architecture allows, into an OpenVINO model whose matrix products run in int8
(``openvino/model-int8.xml`` and ``.bin``, listed in the manifest with their sha256 like every other file).
Before publication (while the label agreement is measured on the staged version) it lives in the stage's own
cache folder with recorded sha256s; :func:`publish_openvino` moves it into ``openvino/``.

OpenVINO float32 and bfloat16 need nothing of their own: OpenVINO reads the published float32 ONNX graph."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .onnx_export import EXPORT_OPSET, cache_key, published_file, quiet, trusted_cache, verified, write_verified
from .traced import PACKED_INPUTS, export_network

__all__ = [
    "OPENVINO_DIR",
    "calibration_texts",
    "int8_model",
    "nncf_available",
    "openvino_available",
    "prepare_int8",
    "publish_openvino",
]

log = logging.getLogger(__name__)

OPENVINO_DIR = "openvino"  # the OpenVINO models published with the version, listed in its manifest
INT8_NAME = "model-int8"
_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_chat.jsonl"
_CALIBRATION_N = 300  # comments NNCF calibrates on
_CALIBRATION_BATCH = 16


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def nncf_available() -> bool:
    return openvino_available() and importlib.util.find_spec("nncf") is not None


def _pair(xml: Path) -> tuple[Path, Path]:
    return xml, xml.with_suffix(".bin")


def _staged(cache: Path, model_dir: Path) -> Path:
    """The ``.xml`` of the int8 model made for ``model_dir`` in its cache folder, named by the weights' and the
    export recipe's key (a new recipe makes it again)."""
    return cache / f"openvino-int8-{cache_key(model_dir, 'openvino-int8')}.xml"


def int8_model(model_dir: Path) -> Path:
    """The ``.xml`` of the version's OpenVINO int8 model: the one published with it (both files with the sha256
    its manifest lists), else one made for its publication in its own cache folder (each file with its recorded
    sha256). Never made here: a version without one raises :class:`ModelError`."""
    xml = model_dir / OPENVINO_DIR / f"{INT8_NAME}.xml"
    if all(published_file(model_dir, f"{OPENVINO_DIR}/{p.name}") for p in _pair(xml)):
        return xml
    cache = trusted_cache(model_dir)
    if cache is not None and (model_dir / "config.json").is_file():
        try:
            staged = _staged(cache, model_dir)
        except OSError:
            staged = None
        if staged is not None and all(p.is_file() and verified(p, model_dir) for p in _pair(staged)):
            return staged
    raise ModelError(
        f"{model_dir}: no intact OpenVINO int8 model published with this version (it is made when a "
        "version is published: livetopic train, model add or pull, model init)"
    )


def calibration_texts(texts: Sequence[str] | None = None) -> list[str]:
    """Up to 300 comments to calibrate on: ``texts``, else the bundled sample."""
    if texts:
        return list(texts)[:_CALIBRATION_N]
    lines = _SAMPLE.read_text(encoding="utf-8").splitlines()
    return [str(json.loads(line)["text"]) for line in lines if line.strip()][:_CALIBRATION_N]


def _calibration_feeds(model_dir: Path, texts: Sequence[str], inputs: set[str]) -> list[dict[str, np.ndarray]]:
    """The comments as a worker feeds the graph, ``inputs`` by name: in passes of packed rows (of 64 comments at a
    time) for a packed graph, else in length-sorted padded chunks (of 16 comments at a time)."""
    from .chunks import PACK_TOKENS, pad_chunks
    from .sources import longest_input
    from .tokenizer import encode_texts, load_tokenizer, serving_backend

    tokenizer = load_tokenizer(model_dir)
    # cut where the model's positions end: a longer comment makes a graph of a smaller model fail (its
    # position and token-type buffers are that long)
    encoded = encode_texts(serving_backend(tokenizer, longest_input(model_dir)), str, texts)
    pack_tokens = PACK_TOKENS if set(PACKED_INPUTS) <= inputs else 0
    group = _CALIBRATION_BATCH * (4 if pack_tokens else 1)
    pad_id = int(tokenizer.pad_token_id or 0)  # as the worker pads
    feeds = []
    for start in range(0, len(encoded), group):
        prepared = pad_chunks(encoded[start : start + group], 1 << 30, pad_id, 16, pack_tokens=pack_tokens)
        feeds += [chunk.feed(inputs) for chunk in prepared.chunks]
    return feeds


def _first_token_products(model: Any) -> list[str]:
    """The matrix products on one token a comment (2-D activations: in a packed graph the last layer past its
    attention, the pooler and the classifier; in a padded one the head), left out of quantisation: they are a few
    percent of the work, and calibrated on one token a comment their int8 scales cost label agreement (the
    untrained bert-base's: 83% against 94% with them left in bf16/float32, :mod:`.traced`)."""
    return [
        op.get_friendly_name()
        for op in model.get_ops()
        if op.get_type_name() == "MatMul"
        and op.input_value(0).get_partial_shape().rank.is_static
        and op.input_value(0).get_partial_shape().rank.get_length() == 2
    ]


def _quantise(model_dir: Path, texts: Sequence[str], out_xml: Path) -> None:
    """NNCF's int8 of the version's network, traced packed where its architecture has a packed forward (as
    ONNX Runtime's int8 graph: several comments a row), calibrated on ``texts``."""
    import nncf
    import openvino as ov

    # its own logger writes to the standard output through its own handler; nncf.set_log_level would also set
    # the level of every handler on that logger, which can be another's (pytest's capture handler, say)
    logging.getLogger("nncf").setLevel(logging.ERROR)
    try:  # its progress bars go to the standard output: keep it for what the command prints (bench --json)
        with quiet(), contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory() as work:
            traced = Path(work) / "network.onnx"
            export_network(model_dir, traced, packed=True, opset=EXPORT_OPSET)
            model = ov.Core().read_model(str(traced))
            feeds = _calibration_feeds(model_dir, texts, {port.get_any_name() for port in model.inputs})
            floating = _first_token_products(model)
            quantised = nncf.quantize(
                model,
                nncf.Dataset(feeds),
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(feeds),
                ignored_scope=nncf.IgnoredScope(names=floating) if floating else None,
            )
            ov.save_model(quantised, str(out_xml), compress_to_fp16=False)
    except ModelError:
        raise
    except Exception as exc:  # NNCF and OpenVINO raise their own kinds
        raise ModelError(f"{model_dir}: OpenVINO int8 quantisation failed: {type(exc).__name__}: {exc}") from exc


def _build(model_dir: Path, texts: Sequence[str]) -> Path:
    """Make the int8 model into the version's cache folder (each file's sha256 recorded); returns its ``.xml``."""
    cache = trusted_cache(model_dir)
    if cache is None:
        raise ModelError(f"{model_dir}: its cache folder is not trusted: no OpenVINO int8 model made")
    target = _staged(cache, model_dir)
    cache.mkdir(exist_ok=True, mode=0o755)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".openvino-", dir=cache) as work:
        built = Path(work) / "model.xml"
        _quantise(model_dir, calibration_texts(texts), built)
        for made, final in zip(_pair(built), _pair(target), strict=True):
            write_verified(made, final)
    log.info("made the OpenVINO int8 model of %s in %.1f s", model_dir, time.perf_counter() - started)
    return target


def prepare_int8(stage: Path, texts: Sequence[str] = ()) -> Path | None:
    """The int8 model of a staged version (its ``.xml``), made now unless made already: before its label agreement
    is measured, and by :func:`publish_openvino`. None (a WARNING) without OpenVINO and NNCF, or for a network
    that does not quantise: the agreement leaves it out and workers serve the version on the other engines."""
    if not nncf_available():
        log.warning("%s: openvino or nncf is not installed: no OpenVINO int8 model", stage)
        return None
    try:
        try:
            return int8_model(stage)
        except ModelError:
            return _build(stage, texts)
    except (ModelError, OSError) as exc:
        log.warning("no OpenVINO int8 model (workers serve this version on the other engines): %s", exc)
        return None


def publish_openvino(stage: Path, texts: Sequence[str] = ()) -> list[str]:
    """Put the OpenVINO int8 model of the version in ``stage`` into ``stage/openvino/`` unless it is there (a
    version published again: promote, rollback); returns the files made (relative)."""
    if all(p.is_file() for p in _pair(stage / OPENVINO_DIR / f"{INT8_NAME}.xml")):
        return []
    xml = prepare_int8(stage, texts)
    if xml is None:
        return []
    (stage / OPENVINO_DIR).mkdir(exist_ok=True)
    made = []
    for source, name in zip(_pair(xml), (f"{INT8_NAME}.xml", f"{INT8_NAME}.bin"), strict=True):
        if source.parent != stage / OPENVINO_DIR:
            shutil.copyfile(source, stage / OPENVINO_DIR / name)
        made.append(f"{OPENVINO_DIR}/{name}")
    return made
