"""Model versions made for tests: published again from another version's files, damaged, or with a manifest
as older versions of livetopic wrote it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from worker.model.repository import MANIFEST_NAME, publish_version, read_manifest


def republish(repo: Path, source: Path, damage: Callable[[Path], None] | None = None) -> int:
    """Publish the files of the version directory ``source`` again as the next version of ``repo`` (atomically,
    the manifest last), after ``damage`` (if any) changed them; returns its number."""

    def write(out: Path) -> None:
        for item in source.iterdir():
            if item.name != MANIFEST_NAME and item.is_file():
                shutil.copy(item, out / item.name)
        if damage is not None:
            damage(out)

    return publish_version(repo, write, read_manifest(source))


def strip_file_list(vdir: Path) -> None:
    """The manifest as versions published before manifests listed their files have it."""
    raw = json.loads((vdir / MANIFEST_NAME).read_text(encoding="utf-8"))
    raw.pop("files", None)
    (vdir / MANIFEST_NAME).write_text(json.dumps(raw), encoding="utf-8")


def truncate_weights(vdir: Path) -> None:
    weights = vdir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def garbage_weights(vdir: Path) -> None:
    (vdir / "model.safetensors").write_bytes(b"this is not a safetensors file")
