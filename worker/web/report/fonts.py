"""A font with Chinese glyphs for matplotlib, so topic names and comments render as characters, not boxes.

Looked for among matplotlib's known fonts, then among the system's font files (matplotlib's font cache may
predate a font installed later); ``--font PATH`` names one outright. None found: a clear error saying what to
install (Debian: ``fonts-noto-cjk`` or ``fonts-wqy-zenhei``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ReportError

__all__ = ["CJK_FAMILIES", "Fonts", "find_fonts", "needs_cjk"]

CJK_FAMILIES = (
    "Noto Sans CJK TC",
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK KR",
    "Noto Sans TC",
    "Source Han Sans TC",
    "Source Han Sans SC",
    "Source Han Sans",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing TW",
    "AR PL UKai TW",
    "Microsoft JhengHei",
    "PingFang TC",
    "Heiti TC",
)
_FILE_HINTS = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy", "droidsansfallback", "uming", "ukai")
INSTALL_HINT = (
    "install a CJK font (Debian/Ubuntu: apt-get install fonts-noto-cjk, or fonts-wqy-zenhei) or "
    "pass --font PATH to a .ttf/.otf/.ttc with Chinese glyphs"
)


@dataclass(frozen=True, slots=True)
class Fonts:
    family: list[str]  # for rcParams["font.family"]: the CJK font first, then matplotlib's default
    cjk: str | None
    path: str | None
    charmap: frozenset[int]  # code points the chosen fonts can draw

    def printable(self, text: str) -> str:
        """``text`` without the characters no chosen font has (emoji…), which would draw as boxes."""
        return "".join(ch for ch in text if ord(ch) in self.charmap or ch in " \n\t")


def needs_cjk(texts: list[str]) -> bool:
    return any(ord(ch) >= 0x2E80 for text in texts for ch in text)


def _charmap(path: str) -> set[int]:
    from matplotlib.ft2font import FT2Font

    return set(FT2Font(path).get_charmap())


def _known(font_manager: Any) -> tuple[str, str] | None:
    by_name = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in by_name:
            return family, by_name[family]
    return None


def _from_system(font_manager: Any) -> tuple[str, str] | None:
    candidates = sorted(
        p
        for p in font_manager.findSystemFonts()
        if any(h in Path(p).name.lower().replace("-", "").replace("_", "") for h in _FILE_HINTS)
    )
    # sans before serif, regular before bold
    candidates.sort(key=lambda p: ("serif" in p.lower(), "bold" in p.lower() or "black" in p.lower()))
    for path in candidates:
        try:
            font_manager.fontManager.addfont(path)
        except (OSError, RuntimeError, ValueError):
            continue
        return font_manager.FontProperties(fname=path).get_name(), path
    return None


def find_fonts(explicit: Path | None = None, *, required: bool = True) -> Fonts:
    """The fonts for a report's PNG. Raises :class:`ReportError` when ``required`` and none has Chinese glyphs."""
    from matplotlib import font_manager

    found: tuple[str, str] | None
    if explicit is not None:
        if not explicit.is_file():
            raise ReportError(f"--font {explicit}: no such file")
        try:
            font_manager.fontManager.addfont(str(explicit))
        except (OSError, RuntimeError, ValueError) as exc:
            raise ReportError(f"--font {explicit}: not a font matplotlib can read ({exc})") from exc
        found = font_manager.FontProperties(fname=str(explicit)).get_name(), str(explicit)
    else:
        found = _known(font_manager) or _from_system(font_manager)
    default = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    charmap = _charmap(default)
    if found is None:
        if required:
            raise ReportError(f"no font with Chinese glyphs found for the PNG report: {INSTALL_HINT}")
        return Fonts(["DejaVu Sans"], None, None, frozenset(charmap))
    charmap |= _charmap(found[1])
    return Fonts([found[0], "DejaVu Sans"], found[0], found[1], frozenset(charmap))
