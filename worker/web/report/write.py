"""Build a report's timelines from its runs and write each requested file (by suffix: .html or .png)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...errors import ReportError
from .html import render_html
from .timeline import Run, Timeline, build_timeline, compare

__all__ = ["OUTPUT_SUFFIXES", "check_outputs", "timelines_of", "write_report"]

OUTPUT_SUFFIXES = (".html", ".png")


def check_outputs(outs: Sequence[Path]) -> None:
    """Raise :class:`ReportError` for an output that is neither .html nor .png (before any work is done)."""
    if not outs:
        raise ReportError("--out is required (report.html or report.png)")
    for out in outs:
        if out.suffix.lower() not in OUTPUT_SUFFIXES:
            raise ReportError(f"--out {out}: the report is written as .html or .png, not {out.suffix or 'no suffix'!r}")


def timelines_of(runs: Sequence[Run], window_s: float, *, peaks: int = 3, top: int = 3) -> list[Timeline]:
    return [build_timeline(run, window_s, n_peaks=peaks, n_top=top) for run in runs]


def write_report(outs: Sequence[Path], title: str, timelines: Sequence[Timeline], *, font: Path | None = None) -> None:
    check_outputs(outs)
    correlation = compare(timelines[0], timelines[1]) if len(timelines) > 1 else {}
    for out in outs:
        if out.suffix.lower() == ".html":
            render_html(out, title, timelines, correlation)
        else:
            from .png import render_png

            render_png(out, title, timelines, correlation, font=font)
