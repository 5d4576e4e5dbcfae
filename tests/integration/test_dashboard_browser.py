"""The dashboard in a real browser: Redis, a worker and the dashboard as processes, 2,000 real comments pushed
across three channels (half before the dashboard starts: its history; half while it runs), headless Chromium
loading the page. The heat chart draws non-zero series for the selected channel, the feed shows that
channel's comments with their topics, the page's per-topic counts of each channel equal those computed from
the output stream, and the console stays free of errors. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from worker.inputs import read_records
from worker.streams.producer import StreamProducer
from worker.tools.embedded import EmbeddedRedis
from worker.tools.process import DashboardProcess

from ..conftest import ROOT, TOPICS, worker_env
from .browser import Browser, find_chromium

pytestmark = pytest.mark.slow

GAMES = {"ch-g124": ("G124.json", 700), "ch-g126": ("G126.json", 700), "ch-g27": ("G27.json", 600)}


async def push_half(client: aioredis.Redis, tvl_chat_dir: Path, half: int) -> dict[str, dict[str, str]]:
    """Push the first (0) or second (1) half of each channel's comments; id → fields."""
    producer = StreamProducer(client, "livetopic:comments")
    await producer.ensure_group("livetopic")
    pushed = {}
    for channel, (name, n) in GAMES.items():
        records = read_records([tvl_chat_dir / name], channel=channel, limit=n)
        part = [r.fields for r in records[: n // 2]] if half == 0 else [r.fields for r in records[n // 2 :]]
        for entry_id, fields in zip(await producer.add(part), part, strict=True):
            pushed[entry_id] = fields
    return pushed


async def wait_done(client: aioredis.Redis, n: int, timeout_s: float = 120) -> None:
    async with asyncio.timeout(timeout_s):
        while await client.xlen("livetopic:topics") + await client.xlen("livetopic:dead") < n:
            await asyncio.sleep(0.2)


async def expected_counts(client: aioredis.Redis) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for _id, raw in await client.xrange("livetopic:topics"):
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        counts = out.setdefault(fields["channel"], Counter())
        counts["__comments__"] += 1
        counts.update(json.loads(fields["labels"]))
    return out


async def page_counts(browser: Browser, channel: str, total: int) -> dict[str, int]:
    await browser.click(f'#channels li[data-channel="{channel}"]')
    await browser.wait_for(
        f'document.getElementById("channel-title").textContent === {channel!r} && '
        f'document.getElementById("comments-total").getAttribute("data-comments") === "{total}"'
    )
    rows: Any = await browser.eval(
        'Array.from(document.querySelectorAll("#shares tbody tr"))'
        '.map(r => [r.getAttribute("data-label"), +r.getAttribute("data-count")])'
    )
    return {label: count for label, count in rows if count}


@contextlib.asynccontextmanager
async def page_of(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[DashboardProcess, Browser]]:
    """A dashboard process (four updates a second), ready, and Chromium with its page open."""
    with DashboardProcess(
        ["--redis-url", redis_url, "--update-interval-s", "0.25"],
        tmp_path / "dashboard.log",
        env=worker_env(),
        cwd=ROOT,
    ) as dashboard:
        await asyncio.to_thread(dashboard.wait_ready, 60)
        browser = await Browser.start(tmp_path)
        try:
            await browser.open(dashboard.url("/"))
            yield dashboard, browser
        finally:
            await browser.close()


async def test_dashboard_in_chromium(
    tmp_path: Path,
    redis_server: EmbeddedRedis,
    redis_client: aioredis.Redis,
    topic_repo: Path,
    tvl_chat_dir: Path,
    start_worker: Any,
) -> None:
    find_chromium()
    pushed = await push_half(redis_client, tvl_chat_dir, 0)
    start_worker(redis_server.url, topic_repo, "--max-wait-ms", "20")
    await wait_done(redis_client, len(pushed))
    async with page_of(tmp_path, redis_server.url) as (_dashboard, browser):
        await browser.wait_for('document.querySelectorAll("#channels li").length === 4')
        pushed.update(await push_half(redis_client, tvl_chat_dir, 1))  # the live half
        assert len(pushed) == 2_000
        await wait_done(redis_client, 2_000)

        # heat: non-zero series for the selected channel
        await browser.click('#channels li[data-channel="ch-g126"]')
        await browser.wait_for('document.getElementById("channel-title").textContent === "ch-g126"')
        series = await browser.wait_for(
            'Array.from(document.querySelectorAll("#heat path[data-series]"))'
            '.filter(p => +p.getAttribute("data-max") > 0).map(p => p.getAttribute("data-series"))'
        )
        assert "all comments" in series and len(set(series) & set(TOPICS)) >= 4

        # feed: this channel's comments, newest on top, with their texts and topics
        feed = await browser.wait_for(
            'Array.from(document.querySelectorAll("#feed li")).map(li => [li.getAttribute("data-id"), '
            'li.querySelector(".text").textContent, '
            'Array.from(li.querySelectorAll(".chip[data-label]")).map(c => c.textContent)])'
        )
        assert len(feed) == 30
        outputs = {f[b"source_id"].decode(): f for _i, f in await redis_client.xrange("livetopic:topics")}
        for entry_id, text, chips in feed:
            assert pushed[entry_id]["channel"] == "ch-g126" and text == pushed[entry_id]["text"]
            assert chips == json.loads(outputs[entry_id][b"labels"])
        assert [f[0] for f in feed] == sorted(
            (f[0] for f in feed), key=lambda i: tuple(map(int, i.split("-"))), reverse=True
        )
        assert any(chips for _i, _t, chips in feed)
        await browser.screenshot(tmp_path / "dashboard.png")

        # the counts on the page equal the output stream's, channel by channel (whole stream)
        await browser.click('#windows button[data-window="all"]')
        expect = await expected_counts(redis_client)
        assert sum(c["__comments__"] for c in expect.values()) == await redis_client.xlen("livetopic:topics")
        totals = {channel: counts.pop("__comments__") for channel, counts in expect.items()}
        assert set(totals) == set(GAMES)
        for channel in ("ch-g124", "ch-g126", "ch-g27"):
            assert await page_counts(browser, channel, totals[channel]) == dict(expect[channel]), channel
        total = totals["ch-g27"]  # selected now
        await browser.click('#modes button[data-mode="stacked"]')
        first = await browser.eval('document.querySelector("#feed li").getAttribute("data-id")')
        await browser.hover("#feed-panel h2")
        await browser.wait_for('document.getElementById("feed-state").textContent.includes("paused")')
        newest = (await redis_client.xadd("livetopic:comments", {"text": "加油加油", "channel": "ch-g27"})).decode()
        await wait_done(redis_client, 2_001)
        await browser.wait_for(
            f'document.getElementById("comments-total").getAttribute("data-comments") === "{total + 1}"'
        )  # counts move on, the feed holds still
        assert await browser.eval('document.querySelector("#feed li").getAttribute("data-id")') == first
        await browser.hover("#heat-panel h2")
        await browser.wait_for(f'document.querySelector("#feed li").getAttribute("data-id") === {newest!r}')
        await browser.screenshot(tmp_path / "dashboard-whole-stream.png")
        for label in TOPICS:  # characters, not boxes: drawn with a font that has them
            assert await browser.draws_cjk(f'#shares tr[data-label="{label}"] td span:last-child'), label
        await browser.eval(
            '(() => { const s = document.createElement("span"); s.id = "nofont"; '
            's.textContent = "\\u{10FFFC}"; document.body.appendChild(s); })()'
        )
        assert not await browser.draws_cjk("#nofont")  # the check can tell a box
        health = await browser.eval('document.getElementById("h-models").textContent')
        assert health == "topics:1"
        assert browser.errors == []


# --- right-to-left text cannot reorder what follows it --------------------------------------------------------
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE, never closed: without isolation it reverses the rest of its paragraph
HOSTILE_CHANNEL = "ערוץ " + RLO + "חדשות"
HOSTILE_USER = RLO + "משתמש"
HOSTILE_TEXT = "مرحبا " + RLO + "بالعالم 123"

# what is checked → the element of left-to-right text that follows a right-to-left string: with the hostile
# channel selected, and with all channels (the feed then shows each comment's channel before its user)
IN_CHANNEL = {
    "the heading after the channel title": 'document.querySelector("#heat-panel h2 .unit")',
    "the rate after a channel name": 'document.querySelector("#channels li.selected .rate")',
}
IN_ALL = {
    "a user name after a channel name": 'document.querySelector("#feed li[data-id=\\"{0}\\"] .user")',
    "the text after a user name": 'document.querySelector("#feed li[data-id=\\"{1}\\"] .text")',
    "the topic after a comment's text": 'document.querySelector("#feed li[data-id=\\"{2}\\"] .chip[data-label]")',
    "a model after a model": 'document.querySelector("#h-models")',
}

# Where the first and the last letter of the element's left-to-right text are laid out: the word "ltr-check" where
# the text has it, else all its Latin letters and digits. Laid out left to right, the first is left of the last;
# a reversed run puts it right of the last.
LAID_OUT_LTR = """((el) => {
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT), nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  const node = nodes.find((n) => n.textContent.indexOf("ltr-check") >= 0) || nodes[0];
  const text = node.textContent, marker = text.indexOf("ltr-check");
  const word = marker >= 0 ? marker : text.search(/[A-Za-z0-9]/);
  const end = marker >= 0 ? marker + 8 : text.length - 1 - Array.from(text).reverse().join("").search(/[A-Za-z0-9]/);
  const at = (i) => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
                      return r.getBoundingClientRect(); };
  return {text: text, first: at(word).left, last: at(end).left};
})(%s)"""


async def reversed_in(browser: Browser, checks: dict[str, str]) -> dict[str, Any]:
    """The checks whose left-to-right text is laid out right to left (first letter not left of the last)."""
    found = {what: await browser.eval(LAID_OUT_LTR % element) for what, element in checks.items()}
    return {what: where for what, where in found.items() if where["first"] >= where["last"]}


async def test_right_to_left_text_cannot_reorder_what_follows(
    tmp_path: Path, redis_server: EmbeddedRedis, redis_client: aioredis.Redis
) -> None:
    """User names, channel names, comment texts (and model tags) that hold right-to-left letters and an unclosed
    RIGHT-TO-LEFT OVERRIDE: the left-to-right text laid out after each of them on the page keeps its order."""
    find_chromium()
    rows = [  # (channel, user, text, labels, model)
        (HOSTILE_CHANNEL, "ltr-check-user", "ltr check text one", ["Cheer"], "m" + RLO + "odel:1"),
        ("plain", HOSTILE_USER, "ltr check text two", ["Game"], "m" + RLO + "odel:1"),  # the most frequent model
        ("plain", "bob", HOSTILE_TEXT, ["Cheer"], "ltr-check:2"),
    ]
    ids = []
    for channel, user, text, labels, model in rows:
        source = (await redis_client.xadd("livetopic:comments", {"text": text, "channel": channel})).decode()
        scores = json.dumps({"Cheer": 0.9, "Game": 0.1})
        await redis_client.xadd(
            "livetopic:topics",
            {
                "source_id": source,
                "channel": channel,
                "user": user,
                "text": text,
                "labels": json.dumps(labels),
                "scores": scores,
                "model": model,
                "latency_ms": "5",
            },
        )
        ids.append(source)
    async with page_of(tmp_path, redis_server.url) as (_dashboard, browser):
        await browser.wait_for('document.querySelectorAll("#feed li .channel").length === 3')
        reversed_runs = await reversed_in(browser, {k: v.format(*ids) for k, v in IN_ALL.items()})
        await browser.screenshot(tmp_path / "rtl-all.png")
        await browser.click(f'#channels li[data-channel="{HOSTILE_CHANNEL}"]')
        await browser.wait_for(f'document.getElementById("channel-title").textContent === {HOSTILE_CHANNEL!r}')
        await browser.screenshot(tmp_path / "rtl-channel.png")
        reversed_runs.update(await reversed_in(browser, IN_CHANNEL))
        assert reversed_runs == {}
        assert browser.errors == []


async def test_the_page_switches_between_a_pipelines_layers(
    tmp_path: Path, redis_server: EmbeddedRedis, redis_client: aioredis.Redis
) -> None:
    """Results of a pipeline version (game labels where Game is on, sentiment everywhere): one button per layer;
    the legend, the shares and the feed's chips show the chosen layer's labels."""
    find_chromium()
    general = json.dumps({"Cheer": 0.1, "Game": 0.9})
    for i, game_on in enumerate([True, False, True]):
        text = f"comment {i}"
        source = (await redis_client.xadd("livetopic:comments", {"text": text, "channel": "c"})).decode()
        fields = {
            "source_id": source,
            "channel": "c",
            "text": text,
            "labels": json.dumps(["Game"] if game_on else []),
            "scores": general,
            "sentiment_labels": '["positive"]',
            "sentiment_scores": '{"negative":0.1,"neutral":0.2,"positive":0.7}',
            "model": "cascade:2",
            "latency_ms": "5",
        }
        if game_on:
            fields |= {"game_labels": '["Player"]', "game_scores": '{"Player":0.8,"Team":0.1}'}
        await redis_client.xadd("livetopic:topics", fields)
    legend = 'Array.from(document.querySelectorAll("#legend .chip")).map(c => c.textContent).join(",")'
    async with page_of(tmp_path, redis_server.url) as (_dashboard, browser):
        await browser.wait_for('document.querySelectorAll("#layers button").length === 3')
        assert await browser.eval(legend) == "Cheer,Game"
        await browser.eval(
            'Array.from(document.querySelectorAll("#layers button")).find(b => b.textContent === "game")'
            ".click() || true"
        )
        await browser.wait_for(f'{legend} === "game:Player,game:Team"')
        chips = 'Array.from(document.querySelectorAll("#feed .chip")).map(c => c.textContent).join(",")'
        assert "game:Player" in await browser.eval(chips) and "positive" not in await browser.eval(chips)
        await browser.screenshot(tmp_path / "layers.png")
        assert browser.errors == []
