"""``evaluate``'s table: a summary line; one row per label (F1, precision, recall, ROC AUC, support, false positives
and negatives, threshold); where the scorer has thresholds, how far each label's best threshold moves across the
games; and the confusion view, per label the comments on which the scorer and the teacher disagree most. Columns
line up whatever the script of the label names and comments (CJK characters take two columns)."""

from __future__ import annotations

from typing import Any

from worker.display import pad, width

from .metrics import MIN_POSITIVES

__all__ = ["metrics_table"]

_KINDS = {"false_positives": "false positive", "false_negatives": "false negative"}


def _fmt(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _summary(metrics: dict[str, Any]) -> str:
    seen = " (its validation games: optimistic)" if metrics.get("seen_by_model") else ""
    return (
        f"{metrics.get('source')} on {metrics['n']} comments ({metrics.get('games')} games, split "
        f"{metrics.get('split')}{seen}): micro_f1 {_fmt(metrics['micro_f1'])}  macro_f1 "
        f"{_fmt(metrics['macro_f1'])}  exact_match {_fmt(metrics['exact_match'])}"
    )


def _label_rows(per_label: dict[str, dict[str, Any]], first: int) -> list[str]:
    lines = [
        f"{pad('label', first)} {'f1':>7} {'prec':>7} {'recall':>7} {'auc':>7} {'support':>8} {'fp':>6} {'fn':>6} "
        f"{'thr':>5}"
    ]
    for label, m in per_label.items():
        threshold = m.get("threshold")
        lines.append(
            f"{pad(label, first)} {_fmt(m['f1']):>7} {_fmt(m['precision']):>7} {_fmt(m['recall']):>7} "
            f"{_fmt(m['roc_auc']):>7} {m['support']:>8} {m.get('false_positives', ''):>6} "
            f"{m.get('false_negatives', ''):>6} {'' if threshold is None else f'{threshold:.2f}':>5}"
        )
    return lines


def _spread_rows(per_label: dict[str, dict[str, Any]], first: int) -> list[str]:
    spreads = {label: m["threshold_spread"] for label, m in per_label.items() if "threshold_spread" in m}
    if not spreads:
        return []
    lines = [
        f"each label's best threshold game by game (games with {MIN_POSITIVES}+ of its positives); f1_gain: the mean "
        "F1 a game gains with its own",
        f"{pad('label', first)} {'games':>5} {'min':>5} {'median':>6} {'max':>5} {'std':>5} {'pooled':>6} "
        f"{'f1_gain':>7}",
    ]
    for label, s in spreads.items():
        lines.append(
            f"{pad(label, first)} {s['games']:>5} {_fmt(s.get('min'), 2):>5} {_fmt(s.get('median'), 2):>6} "
            f"{_fmt(s.get('max'), 2):>5} {_fmt(s.get('std'), 2):>5} {_fmt(s.get('pooled'), 2):>6} "
            f"{_fmt(s.get('f1_gain')):>7}"
        )
    return lines


def _disagreement_lines(metrics: dict[str, Any]) -> list[str]:
    found = metrics.get("disagreements") or {}
    if not found:
        return []
    lines = ["where it and the teacher disagree (its score / the teacher's, the widest gaps first):"]
    for label, kinds in found.items():
        m = metrics["per_label"][label]
        lines.append(f"{label}: {m['false_positives']} false positives, {m['false_negatives']} false negatives")
        for kind, examples in kinds.items():
            for example in examples:
                lines.append(
                    f"  {pad(_KINDS[kind], 15)} {example['score']:.2f} / {example['teacher']:.2f}  {example['text']}"
                )
    return lines


def metrics_table(metrics: dict[str, Any]) -> list[str]:
    """The lines ``evaluate`` prints for ``metrics`` (:func:`trainer.evaluate.report`'s, or plain metrics)."""
    per_label: dict[str, dict[str, Any]] = metrics["per_label"]
    first = max([5, *(width(label) for label in per_label)])
    return [
        _summary(metrics),
        *_label_rows(per_label, first),
        *_spread_rows(per_label, first),
        *_disagreement_lines(metrics),
    ]
