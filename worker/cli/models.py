"""``livetopic model``: model repository tools."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..model.presets import ARCHS, PRESETS
from ..text import MODES

__all__ = ["register"]


def cmd_model_init(args: argparse.Namespace) -> int:
    from ..inputs import read_records
    from ..model.repository import PreprocessingSpec
    from ..model.untrained import init_version

    texts = [r.fields["text"] for r in read_records(args.vocab_from)] if args.vocab_from else []
    labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    version = init_version(Path(args.out), preset=args.preset, labels=labels, texts=texts, arch=args.arch,
                           multi_label=not args.single_label, name=args.name, max_length=args.max_length,
                           preprocessing=PreprocessingSpec(mode=args.preprocess), seed=args.seed,
                           labels_change_intended=args.change_labels)
    print(f"wrote {args.out}/{version} (untrained {args.arch}, preset {args.preset}, labels {labels})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="model repository tools")
    msub = p.add_subparsers(dest="model_command", required=True)
    q = msub.add_parser("init", help="write an untrained version (random weights, character vocabulary)")
    q.add_argument("--preset", choices=list(PRESETS), default="tiny")
    q.add_argument("--arch", choices=ARCHS, default="bert")
    q.add_argument("--labels", default="Cheer,Game,Broadcast,Chat", help="comma-separated label names")
    q.add_argument("--single-label", action="store_true", help="softmax over labels instead of sigmoid")
    q.add_argument("--vocab-from", nargs="*", type=Path, default=[], help="texts for the vocabulary (push formats)")
    q.add_argument("--out", required=True, type=Path, help="model repository")
    q.add_argument("--name", default="livetopic")
    q.add_argument("--max-length", type=int, default=64)
    q.add_argument("--preprocess", choices=MODES, default="raw")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--change-labels", action="store_true",
                   help="the labels differ from the version this one replaces, on purpose: running workers swap "
                        "it in instead of refusing it")
    q.set_defaults(func=cmd_model_init)
