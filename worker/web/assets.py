"""The files of the page, shipped in the package (``worker/web/static/``): nothing is fetched from elsewhere."""

from __future__ import annotations

from importlib import resources

__all__ = ["CONTENT_TYPES", "static_text"]

CONTENT_TYPES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "chart.js": "text/javascript",
    "report.js": "text/javascript",
    "style.css": "text/css",
    "report.css": "text/css",
}


def static_text(name: str) -> str:
    """A file of ``worker/web/static/`` (one of :data:`CONTENT_TYPES`)."""
    if name not in CONTENT_TYPES:
        raise KeyError(name)
    return (resources.files("worker.web") / "static" / name).read_text(encoding="utf-8")
