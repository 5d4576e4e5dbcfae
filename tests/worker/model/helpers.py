"""What the model tests do to a published version's files: list them, damage one."""

from __future__ import annotations

from pathlib import Path


def written(root: Path) -> set[str]:
    """Every path under ``root``, relative."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def flip_a_bit(path: Path, at: int = -1) -> None:
    """Flip the low bit of byte ``at`` of ``path``: same size, other bytes (its sha256 no longer holds)."""
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))
