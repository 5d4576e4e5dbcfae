"""``livetopic report`` on a real TVL game: the teacher scores in the file and a model's, side by side, as a
PNG (its size, not blank, drawn with a font that has Chinese glyphs) and as HTML opened in headless Chromium
(charts drawn, Chinese topics as characters, no console errors). Screenshots go to the test's tmp dir."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from worker.cli import main
from worker.web.report.fonts import INSTALL_HINT, find_fonts

from ..conftest import TOPICS
from .browser import Browser, find_chromium

pytestmark = pytest.mark.slow


def test_png_of_a_tvl_game(tmp_path: Path, tvl_chat_dir: Path, topic_repo: Path) -> None:
    from PIL import Image

    if find_fonts(required=False).cjk is None:
        pytest.skip(f"no font with Chinese glyphs on this machine: {INSTALL_HINT}")
    out = tmp_path / "G10.png"
    assert (
        main(
            [
                "report",
                str(tvl_chat_dir / "G10.json"),
                "--scores-from-file",
                "--model",
                str(topic_repo),
                "--window",
                "60s",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width == 1500 and height >= 3.6 * 100 + 8 * 145  # a panel per topic
        pixels = image.convert("RGB").resize((300, 300))
        colors = pixels.getcolors(maxcolors=300 * 300)
        assert colors is not None and len(colors) > 50  # not blank
        white = max(count for count, rgb in colors if rgb == (255, 255, 255))
        assert white < 0.97 * 300 * 300


async def test_html_of_a_tvl_game_in_chromium(tmp_path: Path, tvl_chat_dir: Path, topic_repo: Path) -> None:
    find_chromium()
    out = tmp_path / "G10.html"
    code = await asyncio.to_thread(
        main,
        ["report", str(tvl_chat_dir / "G10.json"), "--scores-from-file", "--model", str(topic_repo), "--out", str(out)],
    )
    assert code == 0
    browser = await Browser.start(tmp_path, width=1400, height=1200)
    try:
        await browser.open(out.as_uri())
        titles = await browser.wait_for('Array.from(document.querySelectorAll(".topic h3")).map(h => h.textContent)')
        assert titles == TOPICS
        overviews = await browser.eval(
            'Array.from(document.querySelectorAll("svg[data-run]")).map(s => '
            '[s.getAttribute("data-run"), s.querySelectorAll("path[data-series]").length, '
            'Math.max(...Array.from(s.querySelectorAll("path[data-series]"))'
            '.map(p => +p.getAttribute("data-max")))])'
        )
        assert [o[0] for o in overviews] == ["teacher scores (file)", "model topics:1"]
        assert all(n == 8 and peak > 0 for _name, n, peak in overviews)
        peaks = await browser.eval('document.querySelectorAll(".peak li .text").length')
        assert peaks >= 8
        for label in TOPICS:
            assert await browser.draws_cjk(f'.topic[data-label="{label}"] h3'), label
        await browser.screenshot(tmp_path / "report.png", full_page=True)
        assert browser.errors == []
    finally:
        await browser.close()


async def test_right_to_left_users_and_comments_cannot_reorder_the_report(tmp_path: Path) -> None:
    """A peak's top comments: each text and user name (right-to-left letters and an unclosed RIGHT-TO-LEFT
    OVERRIDE) is isolated, so the time and score laid out after them keep their left-to-right order."""
    import json

    find_chromium()
    rlo = "\u202e"
    rows = [
        {
            "time": f"0:{i:02d}",
            "user": rlo + "משתמש" + str(i),
            "content": "مرحبا " + rlo + "بالعالم " + str(i),
            "加油": 0.9,
            "裁判": 0.1,
        }
        for i in range(60)
    ]
    chat = tmp_path / "rtl.json"
    chat.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "rtl.html"
    assert await asyncio.to_thread(main, ["report", str(chat), "--scores-from-file", "--out", str(out)]) == 0
    browser = await Browser.start(tmp_path, width=1400, height=1200)
    try:
        await browser.open(out.as_uri())
        await browser.wait_for('document.querySelectorAll(".peak li").length > 0')
        # the meta after the text: "0:12 · <user> · 0.90"; the score's first digit left of its last
        order = await browser.eval("""Array.from(document.querySelectorAll(".peak li .muted")).map((meta) => {
          const node = meta.lastChild, text = node.textContent, first = text.search(/[0-9]/);
          const at = (i) => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
                              return r.getBoundingClientRect().left; };
          return at(first) < at(text.length - 1);
        })""")
        assert order and all(order), order
        assert browser.errors == []
    finally:
        await browser.close()
