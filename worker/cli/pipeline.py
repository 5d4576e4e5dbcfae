"""``livetopic pipeline build``: publish a pipeline version (the first stage scores every comment, each further
stage the comments meeting its condition) from versions of other repositories, atomically."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated

from pydantic import Field

from ..options import Flag, Options, add_command, add_group
from ..settings import Settings

__all__ = ["PipelineBuildOptions", "register"]


class PipelineBuildOptions(Options):
    stage: Annotated[list[str], Flag(repeat=True, metavar="NAME=REPO[:N][:when=STAGE.LABEL]")] = Field(
        min_length=1,
        description="a stage, in order: its name (the result's <name>_labels and <name>_scores), the repository "
        "of its model (version N, default the newest), and for a later stage the condition a comment meets for "
        "it to run (when=general.Game: the stage general gave it the label Game); repeat for each stage",
    )
    out: Path = Field(description="the model repository the pipeline is published in, as its next version")
    name: str = Field("livetopic", description="the name in results' model field (NAME:VERSION)")
    change_labels: bool = Field(
        False,
        description="the first stage's labels differ from the served version's, on purpose: running workers swap "
        "the pipeline in instead of refusing it",
    )


def cmd_pipeline_build(options: PipelineBuildOptions, settings: Settings) -> int:
    from ..model.pipeline import build_pipeline, parse_stage

    sources = [parse_stage(text) for text in options.stage]
    number = build_pipeline(options.out, sources, name=options.name, change_labels=options.change_labels)
    stages = ", ".join(f"{s.name}" + (f" (when {s.when})" if s.when else "") for s in sources)
    print(f"published pipeline version {number} in {options.out}: {stages}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    psub = add_group(
        sub, "pipeline", dest="pipeline_command", help="pipeline versions: several models, one result per comment"
    )
    add_command(
        psub,
        "build",
        cmd_pipeline_build,
        options=PipelineBuildOptions,
        help="publish a pipeline of model versions as the next version of a repository",
        description="Each stage's version is checked, loaded and smoke-tested; its files go into the new version "
        "(hard links where possible); running workers hot-reload the whole pipeline at once.",
    )
