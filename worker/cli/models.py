"""``livetopic model``: model repository tools."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated

from pydantic import Field

from ..model.presets import PRESETS, Arch
from ..options import Flag, Options, add_command
from ..settings import Settings
from ..text import Mode

__all__ = ["ModelInitOptions", "register"]

HELP = "write an untrained version (random weights, character vocabulary)"


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


def cmd_model_init(options: ModelInitOptions, _: Settings) -> int:
    from ..inputs import read_records
    from ..model.repository import PreprocessingSpec
    from ..model.untrained import init_version

    texts = [r.fields["text"] for r in read_records(options.vocab_from)] if options.vocab_from else []
    labels = [x.strip() for x in options.labels.split(",") if x.strip()]
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
    )
    print(f"wrote {options.out}/{version} (untrained {options.arch}, preset {options.preset}, labels {labels})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="model repository tools")
    msub = p.add_subparsers(dest="model_command", required=True)
    add_command(msub, "init", cmd_model_init, options=ModelInitOptions, help=HELP)
