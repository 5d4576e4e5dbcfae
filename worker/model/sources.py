"""Where versions come from besides training: a local Hugging Face directory (``model add``) and a model on the
Hugging Face Hub (``model pull``). Either way the files a worker serves are staged in a directory of their own:
``config.json``, the tokenizer's files and the weights as safetensors (pickled weights converted once,
:mod:`.convert`). Nothing else of the model's repository is downloaded or copied (TensorFlow, Flax, Rust or ONNX
weights, pickled training arguments, images). What was taken is recorded in the version's
:class:`~.repository.Source`: each file's size and sha256 as published, the commit a revision resolved to, what
was converted.

Only ``model pull`` reaches a Hub, through ``huggingface_hub``: its cache (``HF_HOME``), ``HF_TOKEN``,
``HF_ENDPOINT``, and ``HF_HUB_OFFLINE`` (offline, or with the Hub out of reach, a model already in the cache is
taken from there). Workers never do: they read the repository only.

The labels are the config's ``id2label`` as published (``LABEL_0``… included); ``--labels`` renames them (the
staged ``config.json`` says the new names, the source keeps the published ones). The problem type is the
config's (``multi_label_classification``: sigmoid and thresholds, 0.5 each; otherwise softmax and the top
label; one output: sigmoid), as transformers' text-classification pipeline reads it; the text goes to the
model's own tokenizer as it is, unless the card asks for one of livetopic's preprocessing modes."""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import HubError, ModelError
from ..inputs import json_object
from ..text import Mode
from .contents import FileRecord, sha256_of
from .convert import convert_pickles
from .repository import Manifest, PreprocessingSpec, Source

__all__ = [
    "Staged",
    "choose_files",
    "from_directory",
    "from_hub",
    "longest_input",
    "manifest_for",
    "published_labels",
]

log = logging.getLogger(__name__)

CONFIG = "config.json"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "bpe.codes",
    "spiece.model",
    "sentencepiece.bpe.model",
    "sentencepiece.model",
    "tokenizer.model",
)
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*-of-*.bin")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_LONGEST = 512  # tokens a comment is cut to at most, whatever longer inputs the model takes


@dataclass(frozen=True)
class Staged:
    """A model's files ready to publish, where they came from, and its config."""

    path: Path
    source: Source
    config: dict[str, Any]


def _matching(names: Iterable[str], patterns: Sequence[str]) -> list[str]:
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns))


def choose_files(names: Iterable[str], where: str) -> list[str]:
    """The files of a model repository (top-level names) that livetopic takes: the config, the tokenizer's files
    and the weights, safetensors where there are any, else the pickled ones."""
    top = [n for n in names if "/" not in n]
    if CONFIG not in top:
        raise ModelError(f"{where}: no {CONFIG}: not a Hugging Face model")
    weights = _matching(top, SAFETENSORS_FILES) or _matching(top, PICKLE_FILES)
    if not weights:
        raise ModelError(
            f"{where}: no PyTorch weights (model.safetensors or pytorch_model.bin) among {', '.join(sorted(top))}"
        )
    tokenizer = [n for n in top if n in TOKENIZER_FILES]
    if not tokenizer:
        raise ModelError(f"{where}: no tokenizer files (expected some of {', '.join(TOKENIZER_FILES)})")
    return sorted([CONFIG, *tokenizer, *weights])


def _read_config(path: Path) -> dict[str, Any]:
    config = json_object(path, ModelError, path.name)
    if config.get("auto_map"):
        raise ModelError(
            f"{path.name}: this model needs its own Python code (auto_map); livetopic never runs a model's code"
        )
    return config


def _stage(origin: Path, names: Sequence[str], out: Path, source: Source) -> Staged:
    """Copy ``names`` from ``origin`` (following the Hub cache's links) into ``out``, pickles converted."""
    out.mkdir(parents=True, exist_ok=True)
    files = {n: FileRecord(size=(origin / n).stat().st_size, sha256=sha256_of(origin / n)) for n in names}
    pickles = _matching(names, PICKLE_FILES)
    for name in names:
        if name not in pickles:
            shutil.copyfile(origin / name, out / name)
    converted = convert_pickles(origin, pickles, out)
    source = source.model_copy(update={"files": files, "converted": converted})
    return Staged(out, source, _read_config(out / CONFIG))


def from_directory(directory: Path, out: Path) -> Staged:
    """Stage the model in the local Hugging Face directory ``directory`` into ``out``."""
    if not directory.is_dir():
        raise ModelError(f"{directory}: not a directory")
    names = choose_files((p.name for p in directory.iterdir() if p.is_file()), str(directory))
    return _stage(directory, names, out, Source(kind="directory", path=str(directory.resolve())))


def from_hub(hub_id: str, revision: str | None, out: Path) -> Staged:
    """Stage ``hub_id`` at ``revision`` (a branch, a tag or a commit; default ``main``) into ``out``."""
    revision = revision or "main"
    folder, commit, names = _download(hub_id, revision)
    return _stage(folder, names, out, Source(kind="hub", hub_id=hub_id, revision=revision, commit=commit))


def _download(hub_id: str, revision: str) -> tuple[Path, str | None, list[str]]:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = HfApi().model_info(hub_id, revision=revision)
    except RevisionNotFoundError as exc:
        raise HubError(f"{hub_id}: the Hub has no revision {revision!r} of it") from exc
    except RepositoryNotFoundError as exc:  # gated repositories included
        raise HubError(
            f"{hub_id}: no such model on the Hub, or no access to it (a private or gated model needs HF_TOKEN)"
        ) from exc
    except Exception as exc:  # offline (HF_HUB_OFFLINE), no connection, the Hub down: the cache may have it
        return _from_cache(hub_id, revision, exc)
    names = choose_files([s.rfilename for s in info.siblings or []], f"{hub_id}@{revision}")
    try:  # by the revision's name, so that the cache remembers where it led (an offline pull finds it)
        folder = Path(snapshot_download(hub_id, revision=revision, allow_patterns=names))
    except Exception as exc:  # the Hub's errors, the network's, a full disk
        raise HubError(f"{hub_id}@{revision}: download failed: {type(exc).__name__}: {exc}") from exc
    return folder, folder.name if _COMMIT.match(folder.name) else info.sha, names


def _from_cache(hub_id: str, revision: str, why: Exception) -> tuple[Path, str | None, list[str]]:
    """The model from the local Hub cache when the Hub cannot be asked: complete as a previous pull left it."""
    from huggingface_hub import snapshot_download

    reason = str(why).splitlines()[0] if str(why) else type(why).__name__
    for weights in (SAFETENSORS_FILES, PICKLE_FILES):
        try:
            folder = Path(
                snapshot_download(
                    hub_id,
                    revision=revision,
                    local_files_only=True,
                    allow_patterns=[CONFIG, *TOKENIZER_FILES, *weights],
                )
            )
        except Exception:  # not cached, or only partly: try the other weights, then give up
            continue
        present = [p.name for p in folder.iterdir() if p.is_file()]
        if _matching(present, weights):
            log.warning(
                "%s: the Hub was not asked (%s); taking revision %s from the Hugging Face cache %s",
                hub_id,
                reason,
                revision,
                folder,
            )
            commit = folder.name if _COMMIT.match(folder.name) else None
            return folder, commit, choose_files(present, str(folder))
    raise HubError(
        f"{hub_id}@{revision}: the Hub cannot be asked ({reason}) and the Hugging Face cache has no "
        "complete copy of it (pull it once with the Hub in reach; HF_HUB_OFFLINE=1 stops every request)"
    )


def published_labels(config: dict[str, Any]) -> list[str]:
    """The labels in output order, as the config's ``id2label`` names them (``LABEL_<i>`` where it does not)."""
    id2label = {int(k): str(v) for k, v in (config.get("id2label") or {}).items()}
    count = len(id2label) or int(config.get("num_labels") or 2)
    return [id2label.get(i, f"LABEL_{i}") for i in range(count)]


def _multi_label(config: dict[str, Any], count: int) -> bool:
    problem = config.get("problem_type")
    if problem == "regression":
        raise ModelError(f"{CONFIG}: problem_type regression: a regression model, not a classifier")
    return problem == "multi_label_classification" or count == 1


def longest_input(path: Path, config: dict[str, Any] | None = None) -> int:
    """Tokens the model in ``path`` takes at most: its position embeddings (RoBERTa's start after the padding
    index) and its tokenizer's ``model_max_length``, and never more than 512. ``config``: its ``config.json``, read
    when not given."""
    if config is None:
        config = json_object(path / CONFIG, ModelError)
    positions = int(config.get("max_position_embeddings") or _LONGEST)
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        positions -= int(config.get("pad_token_id") or 1) + 1
    try:
        tokenizer = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
        declared = int(tokenizer.get("model_max_length") or _LONGEST)
    except (OSError, ValueError, TypeError, AttributeError):
        declared = _LONGEST
    return max(8, min(positions, declared, _LONGEST))


def _relabel(path: Path, config: dict[str, Any], labels: list[str]) -> None:
    config = {
        **config,
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
    }
    (path / CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


def _thresholds(given: dict[str, float] | float | None, labels: list[str], multi: bool) -> dict[str, float]:
    if given is None:
        return {}
    if not multi:
        raise ModelError(
            "--thresholds: a single-label model takes its top label; thresholds are for multi-label models"
        )
    return {label: given for label in labels} if isinstance(given, float) else dict(given)


def manifest_for(
    staged: Staged,
    *,
    name: str,
    labels: list[str] | None = None,
    preprocess: Mode = "raw",
    max_length: int | None = None,
    thresholds: dict[str, float] | float | None = None,
    change_labels: bool = False,
) -> Manifest:
    """The manifest of a staged model: its labels as published (or ``labels``, written into its config),
    problem type, thresholds (0.5 each unless given: one for all, or per label, as the model card says), the
    longest input it takes (or ``max_length``), the text as it is (or ``preprocess``)."""
    published = published_labels(staged.config)
    source = staged.source
    if labels:
        if len(labels) != len(published):
            raise ModelError(
                f"--labels names {len(labels)} labels, the model has {len(published)} outputs ({', '.join(published)})"
            )
        _relabel(staged.path, staged.config, labels)
        source = source.model_copy(update={"labels": published})
    longest = longest_input(staged.path, staged.config)
    if max_length is not None and not 8 <= max_length <= longest:
        raise ModelError(f"--max-length must be in [8, {longest}] for this model, got {max_length}")
    multi = _multi_label(staged.config, len(published))
    try:
        return Manifest(
            name=name,
            labels=labels or published,
            max_length=max_length or longest,
            thresholds=_thresholds(thresholds, labels or published, multi),
            problem_type="multi_label_classification" if multi else "single_label_classification",
            preprocessing=PreprocessingSpec(mode=preprocess, lowercase=False, normalize_whitespace=False),
            labels_change_intended=change_labels,
            source=source,
        )
    except ValidationError as exc:
        raise ModelError(
            f"{staged.path}: {exc.errors()[0]['msg']} (labels {labels or published}; --labels renames them)"
        ) from exc
