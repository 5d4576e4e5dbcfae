"""``livetopic model``: the model repository. ``init`` (an untrained version), ``pull`` (a model from the Hugging
Face Hub), ``add`` (a local Hugging Face directory), ``list``, ``show``, ``promote``, ``rollback``, ``remove``.
Every verb's options are declared here, as :class:`~worker.options.Options`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from ..errors import ConfigError
from ..model.presets import PRESETS, Arch
from ..options import Flag, Options, add_command, add_group
from ..settings import Settings
from ..text import Mode
from .admit import Admission, Admitted
from .model_views import entry_json, show_lines, table_lines

__all__ = ["ModelInitOptions", "register"]

NOT_PUBLISHED = 3  # exit status of `pull` and `add` when the model was kept as a candidate (as `train`'s)
_CHANGE_LABELS = "its labels differ from the served version's, on purpose"


def _names(value: str | None) -> list[str] | None:
    return [x.strip() for x in value.split(",") if x.strip()] if value else None


class ModelInitOptions(Options):
    preset: Annotated[str, Flag(choices=tuple(PRESETS))] = Field("tiny", description="model shape")
    arch: Arch = Field("bert", description="architecture")
    labels: str = Field("Cheer,Game,Broadcast,Chat", description="comma-separated label names")
    single_label: bool = Field(False, description="softmax over labels instead of sigmoid")
    vocab_from: list[Path] = Field([], description="texts for the vocabulary (push formats)")
    out: Path = Field(description="model repository")
    name: str = Field("livetopic", description="model name recorded in the manifest")
    max_length: int = Field(64, description="tokens per comment, special tokens included")
    preprocess: Mode = Field("raw", description="text preprocessing mode")
    seed: int = Field(0, description="random seed of the weights")
    change_labels: bool = Field(
        False,
        description="the labels differ from the version this one replaces, on "
        "purpose: running workers swap it in instead of refusing it",
    )


class _InRepo(Options):
    repo: Path | None = Field(None, description="model repository (default: LIVETOPIC_MODEL_REPO, else models)")

    def repository(self, settings: Settings) -> Path:
        return self.repo if self.repo is not None else settings.model_repo


class _Admit(_InRepo):
    name: str | None = Field(None, description="model name in results' model field (default: the model's name)")
    labels: str | None = Field(
        None,
        description="rename the labels, comma-separated, in output order (default: config.json's id2label as "
        "published, LABEL_0… included)",
    )
    preprocess: Mode = Field(
        "raw",
        description="livetopic's text preprocessing before the model's own tokenizer, if the model card asks for "
        "one (default raw: the text as it is)",
    )
    max_length: int | None = Field(
        None, description="cut comments to this many tokens (default: the longest input the model takes, at most 512)"
    )
    thresholds: Annotated[str | None, Flag(metavar="T|LABEL=T,…")] = Field(
        None,
        description="multi-label models: a label is given at this score or above, one for all or per label, as "
        "the model card says (default 0.5)",
    )
    data: Annotated[list[Path], Flag(metavar="PATH")] = Field(
        [],
        description="labelled comments (columns named as the model's labels): publish only if it scores at least "
        "as well on them as the version it replaces, as train's gate (default: none)",
    )
    texts: Annotated[list[Path], Flag(metavar="PATH")] = Field(
        [],
        description="comments in the model's language (push formats) to measure the label agreement of int8 and "
        "bfloat16 with float32 on (default: the --data comments, else the bundled sample chat)",
    )
    force: bool = Field(
        False,
        description="publish although there are no --data comments to compare it with the version it replaces "
        "on, or it scores worse there (default: keep it as a candidate and say why)",
    )
    change_labels: bool = Field(
        False,
        description="the labels differ from the version this one replaces, on purpose: publish it and let running "
        "workers swap it in (they refuse an unannounced label change)",
    )

    def admission(self, settings: Settings) -> Admission:
        return Admission(
            repo=self.repository(settings),
            name=self.name,
            labels=_names(self.labels),
            preprocess=self.preprocess,
            max_length=self.max_length,
            thresholds=_thresholds(self.thresholds),
            data=list(self.data),
            texts=list(self.texts),
            force=self.force,
            change_labels=self.change_labels,
        )


class ModelPullOptions(_Admit):
    hub_id: Annotated[str, Flag(positional=True, metavar="HUB_ID[@REVISION]")] = Field(
        description="e.g. distilbert/distilbert-base-uncased-finetuned-sst-2-english or "
        "cardiffnlp/bertweet-base-emotion@main"
    )


class ModelAddOptions(_Admit):
    directory: Annotated[Path, Flag(positional=True, metavar="DIR")] = Field(
        description="a Hugging Face model directory (save_pretrained, git clone)"
    )


class ModelListOptions(_InRepo):
    as_json: bool = Field(False, alias="json", description="one JSON object")


class ModelShowOptions(_InRepo):
    number: Annotated[int, Flag(positional=True, metavar="N")] = Field(description="the version")
    candidate: bool = Field(False, description="N is a candidate (REPO/candidates/N)")
    as_json: bool = Field(False, alias="json", description="the manifest as JSON")


class ModelPromoteOptions(_InRepo):
    candidate: Annotated[int, Flag(positional=True, metavar="CANDIDATE")] = Field(description="the candidate")
    change_labels: bool = Field(False, description=_CHANGE_LABELS)


class ModelRollbackOptions(_InRepo):
    version: Annotated[int | None, Flag(positional=True, metavar="N")] = Field(
        None, description="the version to go back to (default: the one served before the served one)"
    )
    change_labels: bool = Field(False, description=_CHANGE_LABELS)


class ModelRemoveOptions(_InRepo):
    number: Annotated[int, Flag(positional=True, metavar="N")] = Field(description="the version (or candidate)")
    candidate: bool = Field(False, description="N is a candidate (REPO/candidates/N)")


def _thresholds(value: str | None) -> dict[str, float] | float | None:
    """``0.3`` (every label) or ``LABEL=0.3,LABEL=0.6``."""
    if not value:
        return None
    try:
        if "=" not in value:
            return float(value)
        pairs = [part.rsplit("=", 1) for part in value.split(",") if part.strip()]
        return {label.strip(): float(number) for label, number in pairs}
    except ValueError as exc:
        raise ConfigError(f"--thresholds {value!r}: expected a number, or LABEL=NUMBER,… ({exc})") from exc


def cmd_model_init(options: ModelInitOptions, _: Settings) -> int:
    from ..inputs import read_records
    from ..model.repository import PreprocessingSpec
    from ..model.untrained import init_version

    texts = [r.fields["text"] for r in read_records(options.vocab_from)] if options.vocab_from else []
    labels = _names(options.labels) or []
    version = init_version(
        options.out,
        preset=options.preset,
        labels=labels,
        texts=texts,
        arch=options.arch,
        multi_label=not options.single_label,
        name=options.name,
        max_length=options.max_length,
        preprocessing=PreprocessingSpec(mode=options.preprocess),
        seed=options.seed,
        labels_change_intended=options.change_labels,
        graphs=True,
    )
    print(f"wrote {options.out}/{version} (untrained {options.arch}, preset {options.preset}, labels {labels})")
    return 0


def _report(result: Admitted) -> int:
    manifest = result.manifest
    kind = "multi-label" if manifest.problem_type == "multi_label_classification" else "single-label"
    source = manifest.source.describe() if manifest.source else manifest.name
    what = f"{source}, labels {', '.join(manifest.labels)}; {kind}"
    if result.published:
        print(f"published {result.path} ({what}): {result.reason}")
        return 0
    print(
        f"NOT published: {result.reason}\nkept as candidate {result.path} ({what}); `livetopic model promote "
        f"{result.number}` publishes it"
    )
    return NOT_PUBLISHED


def cmd_model_pull(options: ModelPullOptions, settings: Settings) -> int:
    from ..model.sources import from_hub
    from .admit import admit

    hub_id, _, revision = options.hub_id.partition("@")
    if hub_id.count("/") > 1 or not hub_id.strip("/"):
        raise ConfigError(
            f"{options.hub_id!r}: expected a Hub model id, OWNER/NAME or NAME, with an optional @REVISION"
        )
    return _report(
        admit(
            lambda out: from_hub(hub_id, revision or None, out), hub_id.rsplit("/", 1)[-1], options.admission(settings)
        )
    )


def cmd_model_add(options: ModelAddOptions, settings: Settings) -> int:
    from ..model.sources import from_directory
    from .admit import admit

    directory = options.directory
    return _report(
        admit(lambda out: from_directory(directory, out), directory.resolve().name, options.admission(settings))
    )


def cmd_model_list(options: ModelListOptions, settings: Settings) -> int:
    from ..model.manage import candidates, versions

    repo = options.repository(settings)
    found, kept = versions(repo), candidates(repo)
    if options.as_json:
        listing = {
            "repo": str(repo),
            "versions": [entry_json(e) for e in found],
            "candidates": [entry_json(e) for e in kept],
        }
        print(json.dumps(listing, ensure_ascii=False))
    else:
        print("\n".join(table_lines(repo, found, kept)))
    return 0


def cmd_model_show(options: ModelShowOptions, settings: Settings) -> int:
    from ..model.manage import candidates, versions

    repo = options.repository(settings)
    found = {e.number: e for e in (candidates(repo) if options.candidate else versions(repo))}
    if options.number not in found:
        what = "candidate" if options.candidate else "version"
        raise ConfigError(f"{repo}: there is no {what} {options.number} (`livetopic model list` shows them)")
    entry = found[options.number]
    if options.as_json:
        print(json.dumps(entry_json(entry, full=True), ensure_ascii=False, indent=2))
    else:
        print("\n".join(show_lines(entry)))
    return 0


def cmd_model_promote(options: ModelPromoteOptions, settings: Settings) -> int:
    from ..model.manage import promote

    repo = options.repository(settings)
    number = promote(repo, options.candidate, change_labels=options.change_labels)
    print(f"published {repo / str(number)}: candidate {options.candidate} promoted; workers hot-reload it")
    return 0


def cmd_model_rollback(options: ModelRollbackOptions, settings: Settings) -> int:
    from ..model.manage import rollback

    repo = options.repository(settings)
    number, restored = rollback(repo, options.version, change_labels=options.change_labels)
    print(f"published {repo / str(number)}: the files of version {restored} again (a rollback); workers hot-reload it")
    return 0


def cmd_model_remove(options: ModelRemoveOptions, settings: Settings) -> int:
    from ..model.manage import remove

    repo = options.repository(settings)
    remove(repo, options.number, candidate=options.candidate)
    print(f"removed {'candidate' if options.candidate else 'version'} {options.number} of {repo}")
    return 0


PULL_ABOUT = (
    "Download HUB_ID (at REVISION: a branch, tag or commit; default main) through huggingface_hub (its cache, "
    "HF_TOKEN, HF_ENDPOINT; offline, HF_HUB_OFFLINE=1, from the cache), pin the commit and each file's sha256, "
    "convert pickled weights to safetensors, export ONNX graphs, and publish it as train does (or keep it as a "
    "candidate)."
)


# each model subcommand: its name, handler, options, help (and a description where the help is not enough)
_COMMANDS: tuple[tuple[str, Callable[[Any, Settings], int], type[Options], str, str | None], ...] = (
    (
        "init",
        cmd_model_init,
        ModelInitOptions,
        "write an untrained version (random weights, character vocabulary)",
        None,
    ),
    (
        "pull",
        cmd_model_pull,
        ModelPullOptions,
        "publish a model from the Hugging Face Hub as the next version",
        PULL_ABOUT,
    ),
    (
        "add",
        cmd_model_add,
        ModelAddOptions,
        "publish a local Hugging Face model directory as the next version",
        "As pull, from a directory (config.json, tokenizer files, safetensors or pytorch_model.bin weights).",
    ),
    (
        "list",
        cmd_model_list,
        ModelListOptions,
        "versions and candidates: labels, source, metrics, the one workers serve",
        None,
    ),
    (
        "show",
        cmd_model_show,
        ModelShowOptions,
        "one version's manifest: labels, thresholds, source, files, metrics",
        None,
    ),
    (
        "promote",
        cmd_model_promote,
        ModelPromoteOptions,
        "publish a candidate (a run the publish gate kept back) as the next version",
        None,
    ),
    (
        "rollback",
        cmd_model_rollback,
        ModelRollbackOptions,
        "serve an earlier version again: its files published anew as the next version (history is not renumbered)",
        None,
    ),
    (
        "remove",
        cmd_model_remove,
        ModelRemoveOptions,
        "delete a version (never the one workers serve) or a candidate",
        None,
    ),
)


def register(sub: argparse._SubParsersAction) -> None:
    msub = add_group(
        sub,
        "model",
        dest="model_command",
        help="model repository: init, pull, add, list, show, promote, rollback, remove",
    )
    for name, handler, options, help_text, description in _COMMANDS:
        parser = add_command(msub, name, handler, options=options, help=help_text, description=description)
        if name == "pull":
            parser.set_defaults(reaches_hub=True)
