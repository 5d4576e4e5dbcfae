"""The report as one self-contained HTML file: the data as JSON, the dashboard's chart code and the report's
script and styles inlined, nothing loaded from elsewhere (it opens offline, from a file or an e-mail)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..assets import static_text
from .timeline import Timeline

__all__ = ["render_html", "report_data"]

# everything is inline; nothing may be fetched
_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"


def report_data(title: str, timelines: Sequence[Timeline], correlation: dict[str, float | None]) -> dict[str, Any]:
    return {
        "title": title,
        "time_axis": timelines[0].run.time_axis,
        "runs": [t.as_dict() for t in timelines],
        "correlation": correlation,
    }


def _script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def render_html(path: Path, title: str, timelines: Sequence[Timeline], correlation: dict[str, float | None]) -> None:
    data = report_data(title, timelines, correlation)
    page = f"""<!doctype html>
<html lang="zh-Hant">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{html.escape(title)} · livetopic report</title>
<link rel="icon" href="data:,">
<style>
{static_text("report.css")}
</style>
</head>
<body>
<main id="report"></main>
<script type="application/json" id="report-data">{_script_json(data)}</script>
<script>
{static_text("chart.js")}
</script>
<script>
{static_text("report.js")}
</script>
</body>
</html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
