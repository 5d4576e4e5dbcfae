"""``livetopic pipeline build``: a pipeline version published from versions of other repositories.

Each stage's version is checked (complete, intact), loaded and smoke-tested, its condition checked against the
labels of the stage it names; then its files go into the new version as ``<stage>/`` (hard links where the file
system allows: no space taken), with the stage's own manifest, and the pipeline's manifest names the stages
(:mod:`.stages`). The version is published atomically like any other (:func:`~.repository.publish_version`):
running workers hot-reload the whole pipeline at once."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, ModelError
from .contents import check_complete, check_intact
from .load import load_version
from .manage import labels_change, link_files
from .repository import Manifest, publish_version, read_manifest, resolve_version
from .stages import STAGE_NAME, StageSpec, check_stages, parse_condition

__all__ = ["StageSource", "build_pipeline", "parse_stage"]


@dataclass(frozen=True)
class StageSource:
    """``NAME=REPO[:N][:when=STAGE.LABEL]`` as given to ``--stage``."""

    name: str
    repo: Path
    version: int | None = None
    when: str | None = None


def parse_stage(text: str) -> StageSource:
    """``general=models/general``, ``game=models/game:3:when=general.Game`` → :class:`StageSource`."""
    name, eq, rest = text.partition("=")
    if not eq or not rest:
        raise ConfigError(f"--stage {text!r}: expected NAME=REPO[:N][:when=STAGE.LABEL]")
    parts = rest.split(":")
    when = None
    if parts[-1].startswith("when="):
        when = parts.pop()[len("when=") :]
        try:
            parse_condition(when)
        except ValueError as exc:
            raise ConfigError(f"--stage {text!r}: {exc}") from exc
    version = None
    if len(parts) > 1 and parts[-1].isdigit():
        version = int(parts.pop())
    return StageSource(name, Path(":".join(parts)), version, when)


def _checked(source: StageSource) -> tuple[Path, Manifest, list[str]]:
    """The stage's version directory, its manifest and its labels, once it loads and scores a smoke batch."""
    vdir, number = resolve_version(source.repo, source.version)
    manifest = read_manifest(vdir)
    if manifest.pipeline:
        raise ConfigError(f"stage {source.name!r}: {vdir} is a pipeline itself; a stage is one model")
    if manifest.heads:
        raise ConfigError(f"stage {source.name!r}: {vdir} is a multi-task version; a stage is one single-head model")
    check_complete(vdir, manifest.files)
    check_intact(vdir, manifest.files)
    model = load_version(vdir, manifest, number, device="cpu", dtype="float32", backend="torch")
    model.smoke_test()
    return vdir, manifest, model.labels


def build_pipeline(out: Path, sources: list[StageSource], *, name: str, change_labels: bool = False) -> int:
    """Publish the pipeline of ``sources`` (the first scores every comment) as the next version of ``out``."""
    if not sources:
        raise ConfigError("a pipeline has at least one --stage")
    for source in sources:
        if not re.fullmatch(STAGE_NAME[1:-1], source.name):
            raise ConfigError(
                f"stage name {source.name!r}: lowercase letters, digits and _ (it names the result's "
                "fields <name>_labels and <name>_scores)"
            )
    specs = [StageSpec(name=s.name, path=s.name, when=s.when) for s in sources]
    try:
        check_stages(specs)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    checked = {s.name: _checked(s) for s in sources}
    for spec in specs:
        if (condition := spec.condition()) is not None and condition.label not in checked[condition.stage][2]:
            raise ModelError(
                f"stage {spec.name!r}: {condition.stage} has no label {condition.label!r} "
                f"(its labels: {checked[condition.stage][2]})"
            )
    first = checked[sources[0].name][1]
    intended = labels_change(out, first.labels, change_labels, "the pipeline's first stage")

    def write(tmp: Path) -> None:
        for source in sources:
            link_files(checked[source.name][0], tmp / source.name, manifest=True)

    manifest = Manifest(
        name=name,
        labels=first.labels,
        problem_type=first.problem_type,
        pipeline=specs,
        labels_change_intended=intended,
        created_at=time.time(),
    )
    return publish_version(out, write, manifest)
