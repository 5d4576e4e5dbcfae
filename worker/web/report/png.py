"""The report as a PNG, drawn with matplotlib (the ``[report]`` extra, imported only here): the heat of every
topic over the match, one panel per topic with each run's curve (teacher and model side by side), the
topic shares, and the top comment of each peak. Needs a font with Chinese glyphs (:mod:`.fonts`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...errors import ReportError
from .fonts import Fonts, find_fonts, needs_cjk
from .timeline import Peak, Timeline

__all__ = ["PALETTE", "render_png", "top_quote"]

# the dashboard's colours (worker/web/static/chart.js), one per topic
PALETTE = (
    "#d62728",
    "#1f77b4",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#17becf",
    "#e377c2",
    "#8c564b",
    "#bcbd22",
    "#393b79",
    "#7f7f7f",
    "#637939",
)
RUN_STYLES = ({"linestyle": "-", "linewidth": 1.6}, {"linestyle": "--", "linewidth": 1.3, "color": "#333333"})


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ReportError(
            "a PNG report needs matplotlib: pip install 'livetopic[report]' "
            "(or write an .html report, which needs nothing more)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def clock(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _cut(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def top_quote(peak: Peak, printable: Callable[[str], str], n: int = 26) -> str:
    """The peak's first top comment that the fonts can draw, quoted; when every top comment is emoji only
    (nothing drawable, an empty 「」), says so instead."""
    for comment in peak.top:
        text = _cut(printable(comment.text), n).strip()
        if text:
            return f"「{text}」"
    return "(top comments: emoji only)" if peak.top else ""


def _texts(timelines: Sequence[Timeline]) -> list[str]:
    out = [label for t in timelines for label in t.run.labels]
    out += [c.text for t in timelines for ps in t.peaks.values() for p in ps for c in p.top]
    return out


def _x(t: Timeline) -> list[float]:
    return [(t.start_s + (i + 1) * t.step_s) / 60 for i in range(len(t.total))]


def _overview(ax: Any, t: Timeline, fonts: Fonts) -> None:
    for k, label in enumerate(t.run.labels):
        ax.plot(_x(t), t.heat[label], color=PALETTE[k % len(PALETTE)], linewidth=1.2, label=fonts.printable(label))
    ax.set_title(fonts.printable(f"all topics · {t.run.name}"), loc="left", fontsize=10)
    ax.set_ylabel("comments / min")
    ax.legend(ncol=min(8, max(1, len(t.run.labels))), fontsize=8, loc="upper left", frameon=False)
    ax.grid(alpha=0.3)


def _shares(ax: Any, timelines: Sequence[Timeline], fonts: Fonts) -> None:
    labels = timelines[0].run.labels
    height = 0.8 / len(timelines)
    for r, t in enumerate(timelines):
        ys = [i + r * height for i in range(len(labels))]
        values = [100 * t.shares.get(label, 0.0) for label in labels]
        colors = [PALETTE[i % len(PALETTE)] for i in range(len(labels))]
        ax.barh(ys, values, height=height * 0.9, color=colors, alpha=1.0 if r == 0 else 0.45)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(labels))], [fonts.printable(x) for x in labels])
    ax.invert_yaxis()
    ax.set_xlabel("% of comments")
    title = "topic shares"
    if len(timelines) > 1:
        title += "".join(f"\n{'solid' if r == 0 else 'light'}: {t.run.name}" for r, t in enumerate(timelines[:2]))
    ax.set_title(fonts.printable(title), loc="left", fontsize=9 if len(timelines) > 1 else 10)


def _label_panel(
    ax: Any,
    note: Any,
    k: int,
    label: str,
    timelines: Sequence[Timeline],
    correlation: dict[str, float | None],
    fonts: Fonts,
) -> None:
    color = PALETTE[k % len(PALETTE)]
    for r, t in enumerate(timelines):
        style = dict(RUN_STYLES[min(r, len(RUN_STYLES) - 1)])
        style.setdefault("color", color)
        ax.plot(_x(t), t.heat.get(label, []), label=fonts.printable(t.run.name), **style)
    first = timelines[0]
    for p in first.peaks.get(label, []):
        ax.plot([p.offset_s / 60], [p.per_min], "o", color=color, markersize=4)
    r_text = "" if correlation.get(label) is None else f"   r = {correlation[label]:.2f}"
    ax.set_title(fonts.printable(label) + r_text, loc="left", fontsize=10, color=color)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=8)
    note.axis("off")
    lines = []
    for p in first.peaks.get(label, []):
        lines.append(f"{clock(p.offset_s)}  {p.per_min:.0f}/min  {top_quote(p, fonts.printable)}")
    note.text(
        0,
        1,
        fonts.printable("\n".join(lines) or "no peak"),
        va="top",
        ha="left",
        fontsize=8.5,
        transform=note.transAxes,
    )


def render_png(
    path: Path,
    title: str,
    timelines: Sequence[Timeline],
    correlation: dict[str, float | None],
    *,
    font: Path | None = None,
) -> None:
    """Draw the report into ``path`` (PNG)."""
    plt = _pyplot()
    fonts = find_fonts(font, required=needs_cjk(_texts(timelines)))
    labels = timelines[0].run.labels
    with plt.rc_context({"font.family": fonts.family, "axes.unicode_minus": False}):
        fig = plt.figure(figsize=(15, 3.6 + 1.45 * len(labels)), dpi=100)
        grid = fig.add_gridspec(
            len(labels) + 1,
            2,
            width_ratios=(3.2, 1.3),
            height_ratios=(2.4, *[1] * len(labels)),
            hspace=0.55,
            wspace=0.08,
            left=0.05,
            right=0.99,
            top=0.94,
            bottom=0.05,
        )
        top = fig.add_subplot(grid[0, 0])
        _overview(top, timelines[0], fonts)
        _shares(fig.add_subplot(grid[0, 1]), timelines, fonts)
        axes = []
        for k, label in enumerate(labels):
            ax = fig.add_subplot(grid[k + 1, 0], sharex=top)
            _label_panel(ax, fig.add_subplot(grid[k + 1, 1]), k, label, timelines, correlation, fonts)
            axes.append(ax)
        if len(timelines) > 1 and axes:
            axes[0].legend(fontsize=8, frameon=False, loc="upper right")
        for ax in [top, *axes]:
            ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _pos: clock(v * 60)))
        (axes[-1] if axes else top).set_xlabel(fonts.printable(timelines[0].run.time_axis))
        runs = " vs ".join(t.run.name for t in timelines)
        fig.suptitle(
            fonts.printable(f"{title} · topic heat, rolling {timelines[0].window_s:g} s window · {runs}"),
            x=0.05,
            ha="left",
            fontsize=13,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
        plt.close(fig)
