"""The ``train``, ``evaluate`` and ``label`` subcommands of ``livetopic``.

Kept light: torch, transformers and scikit-learn are imported by the handlers, not here. Errors derive
from :class:`worker.errors.LivetopicError`; ``livetopic`` prints them and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from worker.display import pad, width
from worker.model.presets import PRESETS
from worker.settings import DTYPE_CHOICES
from worker.text import MODES

from .data import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION

__all__ = ["NOT_PUBLISHED", "register"]

NOT_PUBLISHED = 3  # exit status of `train` when the run was kept as a candidate



def _names(values: list[str] | None) -> list[str] | None:
    """``--labels a b`` or ``--labels a,b`` → [a, b]."""
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def register(subparsers: Any) -> None:
    """Add ``train``, ``evaluate`` and ``label`` to ``livetopic``'s subparsers."""
    _register_train(subparsers)
    _register_evaluate(subparsers)
    _register_label(subparsers)


def _register_train(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="train a topic classifier and publish it as the next model version",
        description="Fine-tune --base or train a small BERT from scratch on labelled comments, hold out "
                    "validation games for early stopping and threshold tuning, and publish the best epoch "
                    "as the next version of --out.")
    p.add_argument("--data", nargs="+", required=True, type=Path, metavar="PATH",
                   help="labelled files (chat JSON, JSONL, CSV) or directories of them")
    p.add_argument("--out", required=True, type=Path, metavar="REPO", help="model repository to publish into")
    p.add_argument("--base", metavar="DIR", help="start from a local Hugging Face model directory, a version "
                   "REPO/N or a repository (its latest version); default: from scratch")
    p.add_argument("--labels", nargs="+", metavar="LABEL",
                   help="label columns (space- or comma-separated); default: every non-metadata numeric column")
    p.add_argument("--preprocess", choices=MODES,
                   help="text preprocessing mode (default: the base version's, else raw)")
    p.add_argument("--no-lowercase", dest="lowercase", action="store_false", help="keep letter case")
    p.add_argument("--epochs", type=int, default=10, help="maximum epochs (default 10)")
    p.add_argument("--max-minutes", type=float, help="wall-clock budget of the whole run, minutes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, help="peak learning rate (default 1e-5 with --base; from scratch "
                   "tiny 2e-3, mini and small 5e-4)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64, help="tokens per comment, special tokens included")
    p.add_argument("--preset", choices=list(PRESETS), default="mini",
                   help="from-scratch model size: tiny (2x64), mini (6 layers x 128, default), small (4x256), "
                        "bert-base-chinese (12x768)")
    p.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION,
                   help=f"fraction of games for validation (default {DEFAULT_VAL_FRACTION}, as evaluate)")
    p.add_argument("--test-fraction", type=float, default=DEFAULT_TEST_FRACTION,
                   help="fraction of games held out entirely, scored once at the end and by `evaluate --split "
                        f"test` (default {DEFAULT_TEST_FRACTION}, as evaluate)")
    p.add_argument("--val-games", nargs="+", metavar="GAME", help="explicit validation games (file names)")
    p.add_argument("--test-games", nargs="+", metavar="GAME", help="explicit test games (file names)")
    p.add_argument("--targets", choices=["auto", "soft", "hard"], default="auto",
                   help="train on the soft scores or on 0/1 (auto: soft when the data has soft scores)")
    p.add_argument("--patience", type=int, default=5, help="epochs without improvement before stopping")
    p.add_argument("--warmup", type=float, default=0.06, help="warm-up fraction of the schedule")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--dropout", type=float, help="from scratch: hidden and attention dropout (default 0.1)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--limit", type=int, help="use at most N training rows (quick experiments)")
    p.add_argument("--agreement-n", type=int, default=2000,
                   help="validation comments on which to check the label agreement of int8 and bfloat16 with "
                        "float32 before publishing; recorded in the manifest, read by dtype=auto (0: skip)")
    p.add_argument("--force", action="store_true",
                   help="publish even when the new version scores below the one it replaces on the same "
                        "validation games (default: keep it as a candidate in REPO/candidates/ and say why)")
    p.add_argument("--change-labels", action="store_true",
                   help="the label set differs from the version this one replaces, on purpose: publish it and "
                        "let running workers swap it in (they refuse an unannounced label change)")
    p.add_argument("--run-dir", help="where the metrics log and curves go (default runs/<timestamp>)")
    p.add_argument("--name", default="livetopic", help="model name recorded in the manifest")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def _register_evaluate(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score a model version, the TF-IDF baseline or the keyword labeller on labelled data",
        description="Micro/macro F1, exact match, per-label F1 and ROC AUC on labelled data. --split test "
                    "scores the games a version held out (recorded in its manifest); the baseline is fitted "
                    "on the train games of the same split.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", metavar="REPO[/VERSION]", help="a model repository or version directory")
    what.add_argument("--baseline", choices=["tfidf"], help="fit and score the TF-IDF char n-gram + LR baseline")
    what.add_argument("--labeller", metavar="DIR", help="score the keyword labeller with this lexicon")
    p.add_argument("--data", nargs="+", required=True, type=Path, metavar="PATH")
    p.add_argument("--split", choices=["all", "train", "val", "test"],
                   help="which games (default: test for --baseline and for a trained version, whose games come "
                        "from its manifest: never the ones it trained on; else all)")
    note = "default {}, as train; a trained version uses the games recorded in its manifest"
    p.add_argument("--val-fraction", type=float, default=None,
                   help="fraction of games held out for validation (" + note.format(DEFAULT_VAL_FRACTION) + ")")
    p.add_argument("--test-fraction", type=float, default=None,
                   help="fraction of games held out as test games (" + note.format(DEFAULT_TEST_FRACTION) + ")")
    p.add_argument("--labels", nargs="+", metavar="LABEL", help="score only these labels")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto",
                   help="--model: inference dtype (default auto: as the worker would serve it; float32 "
                        "reproduces the trainer's own numbers exactly)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)


def _register_label(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "label", help="label comments with the keyword rules (Cheer, Game, Broadcast, Chat)",
        description="Keyword labelling: cheer = cheer word or emoji; broadcast = stream word; game = tactic, "
                    "coach or judge word, team emoji, team or player name; chat = none of these. Writes JSONL.")
    p.add_argument("--lexicon", required=True, type=Path, metavar="DIR", help="lexicon directory")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="comments: chat JSON, JSONL/CSV with a text column, or text (one a line)")
    p.add_argument("--out", type=Path, help="output JSONL (default: stdout)")
    p.set_defaults(func=cmd_label)


# --- handlers -------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    cfg = TrainConfig(
        labels=_names(args.labels), base=args.base, preset=args.preset, preprocess=args.preprocess,
        lowercase=args.lowercase, epochs=args.epochs, max_minutes=args.max_minutes, seed=args.seed, lr=args.lr,
        batch_size=args.batch_size, max_length=args.max_length, val_fraction=args.val_fraction,
        test_fraction=args.test_fraction, val_games=_names(args.val_games), test_games=_names(args.test_games),
        targets=args.targets, patience=args.patience, warmup=args.warmup, weight_decay=args.weight_decay,
        dropout=args.dropout, device=args.device, threads=args.threads, limit=args.limit, run_dir=args.run_dir,
        name=args.name, progress=not args.quiet, agreement_n=args.agreement_n, force=args.force,
        change_labels=args.change_labels,
    )
    result = train(args.data, args.out, cfg)
    from .metrics import summary_line

    how = f"best epoch {result.metrics.get('best_epoch')}, stopped by {result.metrics.get('stop_reason')}"
    if result.published:
        parts = [f"published {result.path} ({how}): {result.reason}"]
    else:
        parts = [f"NOT published: {result.reason}", f"kept as candidate {result.path} ({how}); --force publishes "
                 "such a run"]
    parts += [f"{key} games: {summary_line(result.metrics[key])}" for key in ("validation", "test")
              if key in result.metrics]
    parts.append(f"run directory: {result.run_dir}")
    print("\n".join(parts))
    return 0 if result.published else NOT_PUBLISHED


def metrics_table(metrics: dict[str, Any]) -> list[str]:
    """``evaluate``'s table: a summary line, then one row per label, the columns aligned whatever the label
    names' script (CJK names take two columns a character)."""
    def fmt(value: Any) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    seen = " (its validation games: optimistic)" if metrics.get("seen_by_model") else ""
    lines = [f"{metrics.get('source')} on {metrics['n']} comments ({metrics.get('games')} games, split "
             f"{metrics.get('split')}{seen}): micro_f1 {fmt(metrics['micro_f1'])}  macro_f1 "
             f"{fmt(metrics['macro_f1'])}  exact_match {fmt(metrics['exact_match'])}"]
    first = max([5, *(width(label) for label in metrics["per_label"])])
    lines.append(f"{pad('label', first)} {'f1':>7} {'prec':>7} {'recall':>7} {'auc':>7} {'support':>8} {'thr':>5}")
    for label, m in metrics["per_label"].items():
        threshold = m.get("threshold")
        lines.append(f"{pad(label, first)} {fmt(m['f1']):>7} {fmt(m['precision']):>7} {fmt(m['recall']):>7} "
                     f"{fmt(m['roc_auc']):>7} {m['support']:>8} "
                     f"{'' if threshold is None else f'{threshold:.2f}':>5}")
    return lines


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import evaluate

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    common = {"val_fraction": args.val_fraction, "test_fraction": args.test_fraction}
    if args.model:
        metrics = evaluate.evaluate_model(args.model, args.data, split=args.split,
                                          labels=_names(args.labels), device=args.device, dtype=args.dtype,
                                          **common)
    elif args.baseline:
        metrics = evaluate.evaluate_baseline(args.data, split=args.split or "test", labels=_names(args.labels),
                                             **common)
    else:
        metrics = evaluate.evaluate_labeller(args.labeller, args.data, split=args.split or "all", **common)
    if args.json:
        print(json.dumps(metrics, ensure_ascii=False))
    else:
        print("\n".join(metrics_table(metrics)))
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from .data import load_texts
    from .labeller import LABELS, KeywordLabeller

    labeller = KeywordLabeller.from_dir(args.lexicon)
    texts, groups = load_texts(args.files)
    rows = labeller.labels_of(texts)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    try:
        for text, game, row in zip(texts, groups, rows, strict=True):
            record: dict[str, Any] = {"text": text, "game": game}
            record.update({name: int(v) for name, v in zip(LABELS, row, strict=True)})
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.out:
        counts = rows.sum(axis=0)
        print(f"labelled {len(texts)} comments into {args.out}: "
              + ", ".join(f"{name} {int(n)}" for name, n in zip(LABELS, counts, strict=True)), file=sys.stderr)
    return 0
