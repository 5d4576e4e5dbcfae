"""The ``train``, ``evaluate`` and ``label`` subcommands of ``livetopic``.

Kept light: torch, transformers and scikit-learn are imported by the handlers, not here. Errors derive
from :class:`worker.errors.LivetopicError`; ``livetopic`` prints them and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from worker.options import Flag, Options, add_command
from worker.settings import Device, Dtype, Settings

from .config import TrainOptions, names
from .data import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION
from .disagree import DEFAULT_EXAMPLES, DEFAULT_WIDTH

__all__ = ["NOT_PUBLISHED", "EvaluateOptions", "LabelOptions", "register"]

NOT_PUBLISHED = 3  # exit status of `train` when the run was kept as a candidate

_WHAT = "what"  # the one of --model, --baseline, --labeller that evaluate scores
_FRACTION = (
    "fraction of games held out {} (default {}, as train; a trained version uses the games recorded in its manifest)"
)


class EvaluateOptions(Options):
    model: Annotated[str | None, Flag(exclusive=_WHAT, metavar="REPO[/VERSION]")] = Field(
        None, description="a model repository or version directory"
    )
    baseline: Annotated[Literal["tfidf"] | None, Flag(exclusive=_WHAT)] = Field(
        None, description="fit and score the TF-IDF char n-gram + LR baseline"
    )
    labeller: Annotated[str | None, Flag(exclusive=_WHAT, metavar="DIR")] = Field(
        None, description="score the keyword labeller with this lexicon"
    )
    data: Annotated[list[Path], Flag(metavar="PATH")] = Field(
        description="labelled files (chat JSON, JSONL, CSV) or directories of them"
    )
    flat: Annotated[str | None, Flag(metavar="REPO[/VERSION]")] = Field(
        None,
        description="with a pipeline --model: a flat model of the 8 chat topics scored beside the cascade on the "
        "same held-out games",
    )
    split: Literal["all", "train", "val", "test"] | None = Field(
        None,
        description="which games (default: test for --baseline and for a trained version, whose games come from "
        "its manifest: never the ones it trained on; else all)",
    )
    val_fraction: float | None = Field(None, description=_FRACTION.format("for validation", DEFAULT_VAL_FRACTION))
    test_fraction: float | None = Field(None, description=_FRACTION.format("as test games", DEFAULT_TEST_FRACTION))
    labels: Annotated[list[str] | None, Flag(metavar="LABEL")] = Field(None, description="score only these labels")
    device: Device = Field("auto", description="inference device")
    dtype: Dtype = Field(
        "auto",
        description="--model: inference dtype (default auto: as the worker would serve it; float32 reproduces the "
        "trainer's own numbers exactly)",
    )
    threads: int | None = Field(None, description="torch CPU threads")
    examples: int = Field(
        DEFAULT_EXAMPLES,
        ge=0,
        description="example comments per label of each kind of disagreement with the teacher (false positives, "
        f"false negatives), the widest gaps first (default {DEFAULT_EXAMPLES}; 0: the counts only)",
    )
    example_width: int = Field(
        DEFAULT_WIDTH,
        ge=8,
        description=f"columns an example comment is cut to (CJK characters take two; default {DEFAULT_WIDTH})",
    )
    as_json: bool = Field(False, alias="json", description="print one JSON object")

    @field_validator("labels", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> list[str] | None:
        return names(value)

    @model_validator(mode="after")
    def _one_thing(self) -> EvaluateOptions:
        if (self.model, self.baseline, self.labeller) == (None, None, None):
            raise ValueError("one of --model, --baseline or --labeller is required")
        return self


class LabelOptions(Options):
    lexicon: Annotated[Path, Flag(metavar="DIR")] = Field(description="lexicon directory")
    files: Annotated[list[Path], Flag(positional=True, metavar="FILE")] = Field(
        description="comments: chat JSON, JSONL/CSV with a text column, or text (one a line)"
    )
    out: Path | None = Field(None, description="output JSONL (default: stdout)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train``, ``evaluate`` and ``label`` to ``livetopic``'s subcommands."""
    add_command(
        sub,
        "train",
        cmd_train,
        options=TrainOptions,
        help="train a topic classifier and publish it as the next model version",
        description="Fine-tune --base or train a small BERT from scratch on labelled comments, hold out validation "
        "games for early stopping and threshold tuning, and publish the best epoch as the next version of --out.",
    )
    add_command(
        sub,
        "evaluate",
        cmd_evaluate,
        options=EvaluateOptions,
        help="score a model version, the TF-IDF baseline or the keyword labeller on labelled data",
        description="Micro/macro F1, exact match, per-label F1, precision, recall, ROC AUC and support on labelled "
        "data; per label, the false positives and negatives against the teacher's labels with example comments, and "
        "how far its best threshold moves across the games. --split test scores the games a version held out "
        "(recorded in its manifest); the baseline is fitted on the train games of the same split.",
    )
    add_command(
        sub,
        "label",
        cmd_label,
        options=LabelOptions,
        help="label comments with the keyword rules (Cheer, Game, Broadcast, Chat)",
        description="Keyword labelling: cheer = cheer word or emoji; broadcast = stream word; game = tactic, coach or "
        "judge word, team emoji, team or player name; chat = none of these. Writes JSONL.",
    )


# --- handlers -------------------------------------------------------------------------------------------
class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where training is, as Ctrl-C's KeyboardInterrupt is."""


def _raise_terminated(signum: int, _frame: Any) -> None:
    raise _Terminated(signum)


def cmd_train(options: TrainOptions, _: Settings) -> int:
    """Train and publish; interrupted (Ctrl-C, SIGTERM), it says that nothing was published and where the run's
    log so far is, and exits 130 (143)."""
    from .runlog import default_run_dir
    from .train import train

    if options.run_dir is None:  # named now, so that an interruption can say where it is
        options = options.model_copy(update={"run_dir": str(default_run_dir())})
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        result = train(options.data, options.out, options)
    except KeyboardInterrupt as stop:
        print(
            f"livetopic: interrupted: training stopped, nothing was published to {options.out}; the run's log so "
            f"far is in {options.run_dir}; run train again to train anew",
            file=sys.stderr,
        )
        return 128 + (signal.SIGTERM if isinstance(stop, _Terminated) else signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
    from .metrics import summary_line

    how = f"best epoch {result.metrics.get('best_epoch')}, stopped by {result.metrics.get('stop_reason')}"
    if result.published:
        parts = [f"published {result.path} ({how}): {result.reason}"]
    else:
        parts = [
            f"NOT published: {result.reason}",
            f"kept as candidate {result.path} ({how}); --force publishes such a run",
        ]
    parts += [
        f"{key} {_games(result.metrics[key])}: {summary_line(result.metrics[key])}"
        for key in ("validation", "test")
        if key in result.metrics
    ]
    parts.append(f"run directory: {result.run_dir}")
    print("\n".join(parts))
    return 0 if result.published else NOT_PUBLISHED


def _games(metrics: dict[str, Any]) -> str:
    """On how many games a train run's metrics were scored, as evaluate says it."""
    games = metrics.get("games")
    if games == 0:
        return "on the last rows of its only game (optimistic: give more games)"
    return f"on {games} games" if games is not None else "games"


def cmd_evaluate(options: EvaluateOptions, _: Settings) -> int:
    from . import evaluate

    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    shared: dict[str, Any] = {  # the options every scorer takes
        "val_fraction": options.val_fraction,
        "test_fraction": options.test_fraction,
        "examples": options.examples,
        "example_width": options.example_width,
    }
    if options.model and _is_pipeline(options.model):
        return _evaluate_pipeline(options)
    if options.model:
        metrics = evaluate.evaluate_model(
            options.model,
            options.data,
            split=options.split,
            labels=options.labels,
            device=options.device,
            dtype=options.dtype,
            **shared,
        )
    elif options.baseline:
        split = options.split or "test"
        metrics = evaluate.evaluate_baseline(options.data, split=split, labels=options.labels, **shared)
    else:
        assert options.labeller is not None  # the model checks that one of the three is given
        metrics = evaluate.evaluate_labeller(options.labeller, options.data, split=options.split or "all", **shared)
    if options.as_json:
        print(json.dumps(metrics, ensure_ascii=False))
    else:
        from .table import metrics_table

        print("\n".join(metrics_table(metrics)))
    return 0


def _is_pipeline(path: str) -> bool:
    from worker.model.load import locate_model

    manifest = locate_model(path)[1]
    return bool(manifest.pipeline or manifest.heads)


def pipeline_lines(metrics: dict[str, Any]) -> list[str]:
    """``evaluate``'s table for a pipeline (or a multi-task version): each stage's (head's) F1 on its comments,
    then the 8 topics."""
    kind, part = ("multi-task", "head") if metrics["source"] == "multitask" else ("pipeline", "stage")
    lines = [f"{kind} {metrics['model']} on {metrics['n']} comments of {metrics['games']} held-out games"]
    for name, m in metrics["stages"].items():
        lines.append(
            f"  {part} {name} ({m['layer']}): {m['n']} comments, micro_f1 {m['micro_f1']:.4f}  macro_f1 "
            f"{m['macro_f1']:.4f}"
        )
    for key, what in (("topics_cascade", "cascade"), ("topics_flat", "flat model")):
        if key in metrics:
            t = metrics[key]
            per = "  ".join(f"{k} {v:.3f}" for k, v in t["per_topic_f1"].items())
            lines.append(f"  8 topics, {what}: micro_f1 {t['micro_f1']:.4f}  macro_f1 {t['macro_f1']:.4f}  ({per})")
    return lines


def _evaluate_pipeline(options: EvaluateOptions) -> int:
    from worker.model.load import load_model

    from .pipeline_eval import evaluate_pipeline

    assert options.model is not None
    model = load_model(options.model, device=options.device, dtype=options.dtype)
    flat = load_model(options.flat, device=options.device, dtype=options.dtype) if options.flat else None
    metrics = evaluate_pipeline(model, options.data, flat=flat)
    print(json.dumps(metrics, ensure_ascii=False) if options.as_json else "\n".join(pipeline_lines(metrics)))
    return 0


def cmd_label(options: LabelOptions, _: Settings) -> int:
    from .data import load_texts
    from .labeller import LABELS, KeywordLabeller

    labeller = KeywordLabeller.from_dir(options.lexicon)
    texts, groups = load_texts(options.files)
    rows = labeller.labels_of(texts)
    out = open(options.out, "w", encoding="utf-8") if options.out else sys.stdout  # noqa: SIM115
    try:
        for text, game, row in zip(texts, groups, rows, strict=True):
            record: dict[str, Any] = {"text": text, "game": game}
            record.update({name: int(v) for name, v in zip(LABELS, row, strict=True)})
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if options.out:
        counts = rows.sum(axis=0)
        print(
            f"labelled {len(texts)} comments into {options.out}: "
            + ", ".join(f"{name} {int(n)}" for name, n in zip(LABELS, counts, strict=True)),
            file=sys.stderr,
        )
    return 0
