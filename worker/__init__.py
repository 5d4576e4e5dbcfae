"""livetopic: a streaming topic classifier for livestream chat (the service and its tools)."""

from __future__ import annotations

__all__ = ["package_version"]


def package_version() -> str:
    """livetopic's installed version (``--version``, ``livetopic_build_info``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("livetopic")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without an install
        return "unknown"
