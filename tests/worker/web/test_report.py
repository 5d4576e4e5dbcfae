"""``livetopic report``: the timeline (rolling heat, peaks with their top comments, shares) on comments whose
numbers are known, the command on chat files written here and on a real output stream, and its errors."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from worker.cli import main
from worker.errors import ReportError
from worker.tools.embedded import EmbeddedRedis
from worker.web.report.timeline import Run, Scored, build_timeline, compare

LABELS = ["加油", "裁判"]


def chat_file(path: Path, n: int = 120) -> Path:
    """A two-minute game: a comment a second; 加油 in the first minute, 裁判 from 1:20 to 1:40."""
    rows = []
    for i in range(n):
        cheer = 0.9 if i < 60 else 0.1
        ref = 0.8 if 80 <= i < 100 else 0.05
        rows.append(
            {
                "time": f"{i // 60}:{i % 60:02d}",
                "user": f"u{i % 7}",
                "content": f"留言{i} 加油" if cheer > 0.5 else f"留言{i}",
                "加油": cheer,
                "裁判": ref + i / 10_000,
                "positive": 0.99,
            }
        )
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def embedded_data(html_path: Path) -> dict[str, Any]:
    text = html_path.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert match, "no embedded data"
    return json.loads(match.group(1).replace("<\\/", "</"))


def test_heat_peaks_and_shares() -> None:
    comments = [
        Scored(float(i), f"c{i}", ("a",) if i < 30 else ("b",), {"a": i / 100, "b": 1 - i / 100}) for i in range(90)
    ]
    t = build_timeline(Run("r", ["a", "b"], comments), window_s=30)
    assert t.step_s == 5 and t.start_s == 0 and len(t.total) == 18
    assert max(t.heat["a"]) == pytest.approx(60.0)  # 30 comments in 30 s = 60 a minute
    assert t.heat["a"][5] == pytest.approx(60.0) and t.heat["a"][-1] == 0
    assert t.counts == {"a": 30, "b": 60} and t.shares == {"a": pytest.approx(1 / 3), "b": pytest.approx(2 / 3)}
    [peak] = t.peaks["a"]
    assert peak.offset_s == 30 and peak.per_min == pytest.approx(60.0)
    assert [c.text for c in peak.top] == ["c29", "c28", "c27"]  # its window's comments, by score
    b_peaks = t.peaks["b"]
    assert 1 <= len(b_peaks) <= 3 and all(
        abs(p.offset_s - q.offset_s) >= 30 for p in b_peaks for q in b_peaks if p is not q
    )
    same = compare(t, build_timeline(Run("r2", ["a", "b"], comments), window_s=30))
    assert same == {"a": 1.0, "b": 1.0}


def test_report_html_from_teacher_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    game = chat_file(tmp_path / "G1.json")
    out = tmp_path / "out" / "g1.html"
    assert main(["report", str(game), "--scores-from-file", "--window", "20s", "--out", str(out)]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    data = embedded_data(out)
    [run] = data["runs"]
    assert data["title"] == "G1" and run["labels"] == LABELS  # not the sentiment column
    assert run["counts"] == {"加油": 60, "裁判": 20} and run["comments"] == 120
    [peak] = [p for p in run["peaks"]["裁判"]]
    assert 95 <= peak["offset"] <= 105 and peak["per_min"] == pytest.approx(60.0)
    assert [c["text"] for c in peak["top"]] == ["留言99", "留言98", "留言97"]  # by teacher score
    assert "src=" not in out.read_text() and 'href="http' not in out.read_text()  # self-contained


def test_report_with_a_model_side_by_side(tmp_path: Path, topic_repo: Path) -> None:
    game = tmp_path / "G2.json"
    rows = [{"time": f"0:{i:02d}", "content": "加油" * (1 + i % 3), "轉播": 0.9, "加油": 0.2} for i in range(40)]
    game.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "g2.html"
    assert (
        main(
            [
                "report",
                str(game),
                "--scores-from-file",
                "--model",
                str(topic_repo),
                "--dtype",
                "float32",
                "--window",
                "10s",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = embedded_data(out)
    teacher, model = data["runs"]
    assert teacher["name"] == "teacher scores (file)" and model["name"] == "model topics:1"
    assert teacher["labels"] == ["轉播", "加油"]  # the model's labels that the file scores
    assert teacher["counts"] == {"轉播": 40, "加油": 0}
    assert len(model["labels"]) == 8 and set(data["correlation"]) <= {"轉播", "加油"}
    assert len(teacher["total"]) == len(model["total"])


async def add_result(client: aioredis.Redis, source: str, channel: str, ts: str, **fields: str) -> None:
    """Model m:3's result for comment ``source``: 加油 (0.9, 裁判 0.1), then ``fields``."""
    scores = json.dumps({"裁判": 0.1, "加油": 0.9}, ensure_ascii=False)
    entry: dict[FieldT, EncodableT] = {"source_id": source, "channel": channel, "ts": ts, "model": "m:3"}
    await client.xadd("livetopic:topics", entry | {"labels": json.dumps(["加油"]), "scores": scores} | fields)


async def test_report_from_the_output_stream(
    tmp_path: Path, redis_server: EmbeddedRedis, redis_client: aioredis.Redis
) -> None:
    for i in range(50):
        channel = "a" if i % 2 else "b"
        source = (await redis_client.xadd("livetopic:comments", {"text": f"第{i}則 加油", "channel": channel})).decode()
        await add_result(redis_client, source, channel, f"1:{i:02d}", latency_ms="5")
    out = tmp_path / "stream.html"
    code = await _run_main(
        ["report", "--stream", "--redis-url", redis_server.url, "--channel", "a", "--window", "10s", "--out", str(out)]
    )
    assert code == 0
    data = embedded_data(out)
    [run] = data["runs"]
    assert run["name"] == "model m:3" and run["labels"] == ["裁判", "加油"]  # model order, from the scores
    assert run["counts"] == {"裁判": 0, "加油": 25} and data["time_axis"].startswith("match time")
    top = run["peaks"]["加油"][0]["top"]
    assert top and all(re.fullmatch(r"第\d*[13579]則 加油", c["text"]) for c in top)  # channel a, looked up


async def test_report_from_a_stream_with_retractions_leaves_the_retracted_comments_out(
    tmp_path: Path, redis_server: EmbeddedRedis, redis_client: aioredis.Redis
) -> None:
    """Issue 22: a deletion removes its message, a ban its author's earlier comments of the channel (not later
    ones, not another channel's), a retraction published before its comment's result too; the retraction entries
    themselves are no comments."""
    sources = []
    for i in range(20):
        channel = "a" if i != 19 else "b"
        source = (await redis_client.xadd("livetopic:comments", {"text": f"第{i}則", "channel": channel})).decode()
        sources.append(source)
        if i == 12:  # a retraction of comment 12 (its id m12) published before comment 12's result
            await redis_client.xadd(
                "livetopic:topics",
                {
                    "source_id": source.replace("-", "-9"),
                    "kind": "retract",
                    "action": "delete",
                    "target_id": "m12",
                    "channel": "a",
                },
            )
        await add_result(
            redis_client, source, channel, f"0:{i:02d}", id=f"m{i}", author_id="bob" if i % 5 == 0 else f"u{i}"
        )
        if i == 3:
            await redis_client.xadd(
                "livetopic:topics",
                {"source_id": sources[2], "kind": "retract", "action": "delete", "target_id": "m1", "channel": "a"},
            )
        if i == 16:  # bans bob: comments 0, 5, 10 and 15 of channel a; 19 is in b, and after
            await redis_client.xadd(
                "livetopic:topics",
                {
                    "source_id": f"{source.split('-')[0]}-99",
                    "kind": "retract",
                    "action": "ban",
                    "target_author_id": "bob",
                    "channel": "a",
                },
            )
    for channel, want in (("a", 19 - 1 - 1 - 4), ("b", 1)):
        out = tmp_path / f"{channel}.html"
        code = await _run_main(
            ["report", "--stream", "--redis-url", redis_server.url, "--channel", channel, "--out", str(out)]
        )
        assert code == 0
        data = embedded_data(out)
        [run] = data["runs"]
        assert run["comments"] == want and run["counts"]["加油"] == want and run["name"] == "model m:3"
    assert "6 retracted comments left out" in (tmp_path / "a.html").read_text("utf-8")


async def _run_main(argv: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(main, argv)  # the command runs its own event loop


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "G.json", "--scores-from-file"], "--out is required"),
        (["report", "G.json", "--scores-from-file", "--out", "r.pdf"], "as .html or .png"),
        (["report", "G.json", "--out", "r.html"], "needs --scores-from-file, --model or both"),
        (["report", "--stream", "G.json", "--out", "r.html"], "either --stream or chat FILEs"),
        (["report", "--stream", "--scores-from-file", "--out", "r.html"], "score chat FILEs"),
    ],
)
def test_report_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    chat_file(tmp_path / "G.json", n=10)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_comments_without_time_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    game = tmp_path / "g.jsonl"
    game.write_text('{"text": "加油", "加油": 1}\n', encoding="utf-8")
    assert main(["report", str(game), "--scores-from-file", "--out", str(tmp_path / "r.html")]) == 2
    assert "no time of the comment" in capsys.readouterr().err


def test_png_without_matplotlib_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.web.report.png import _pyplot

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as in a base install
    with pytest.raises(ReportError, match=r"pip install 'livetopic\[report\]'"):
        _pyplot()


async def test_a_report_on_a_stream_shows_each_pipeline_layer(redis_client: aioredis.Redis) -> None:
    from worker.web.report.sources import run_from_stream

    general = json.dumps({"Cheer": 0.1, "Game": 0.9})
    for i, game_on in enumerate([True, False]):
        fields = {
            "source_id": f"{1700000000000 + i * 1000}-0",
            "text": f"c{i}",
            "model": "cascade:2",
            "labels": json.dumps(["Game"] if game_on else []),
            "scores": general,
            "sentiment_labels": '["positive"]',
            "sentiment_scores": '{"negative":0.2,"positive":0.8}',
        }
        if game_on:
            fields |= {"game_labels": '["Player"]', "game_scores": '{"Player":0.8,"Team":0.1}'}
        await redis_client.xadd("livetopic:topics", fields)
    _title, run = await run_from_stream(redis_client, "livetopic:topics")
    assert run.labels == ["Cheer", "Game", "sentiment:negative", "sentiment:positive", "game:Player", "game:Team"]
    assert [c.labels for c in run.comments] == [("Game", "sentiment:positive", "game:Player"), ("sentiment:positive",)]
    assert run.comments[0].scores["game:Player"] == 0.8 and "game:Player" not in run.comments[1].scores


def test_a_report_scored_by_a_pipeline_shows_each_layer(tmp_path: Path) -> None:
    from worker.model.load import load_model
    from worker.model.pipeline import build_pipeline, parse_stage
    from worker.web.report.sources import read_chat, runs_from_chat

    from ...conftest import SAMPLE
    from ...pipelines import make_layers

    layers = make_layers(tmp_path / "layers")
    build_pipeline(
        tmp_path / "p",
        [parse_stage(f"general={layers['general']}"), parse_stage(f"game={layers['game']}:when=general.Game")],
        name="cascade",
    )
    model = load_model(tmp_path / "p", device="cpu", dtype="float32", backend="torch")
    [run] = runs_from_chat(read_chat([SAMPLE]), teacher=False, model=model)
    assert run.labels[-5:] == ["game:Player", "game:Team", "game:Judge", "game:Coach", "game:Tactics"]
    for comment in run.comments:
        assert ("game:Player" in comment.scores) == ("Game" in comment.labels)


def test_comments_within_a_second_still_draw_a_curve_over_a_minute() -> None:
    """A stream pushed at full speed: every comment within one second. The timeline still spans two windows
    (and at least a minute), so the chart has a curve and its time ticks are distinct whole seconds."""
    comments = [Scored(9.0 + i / 100, f"c{i}", ("a",)) for i in range(40)]
    t = build_timeline(Run("r", ["a"], comments), window_s=60)
    assert t.step_s == 10 and len(t.total) == 12  # two windows of six steps: 2 minutes
    assert t.heat["a"][0] == pytest.approx(40.0) and t.heat["a"][-1] == 0  # the burst, then nothing
    assert [p.offset_s for p in t.peaks["a"]] == [10.0]
    short = build_timeline(Run("r", ["a"], comments), window_s=1)
    assert short.step_s == 1 and len(short.total) == 60  # a one-second window still covers a minute


def test_a_peak_whose_top_comments_are_emoji_only_is_not_an_empty_quote() -> None:
    from worker.web.report.png import top_quote
    from worker.web.report.timeline import Peak

    def printable(text: str) -> str:  # as fonts.printable with a CJK font: no glyph for emoji
        return "".join(ch for ch in text if ord(ch) < 0x1F000)

    emoji, words = Scored(1.0, "🔥🔥👏", ("a",)), Scored(2.0, "好球 🔥", ("a",))
    assert top_quote(Peak("a", 10.0, 5.0, [emoji, words]), printable) == "「好球」"
    assert top_quote(Peak("a", 10.0, 5.0, [emoji]), printable) == "(top comments: emoji only)"
    assert top_quote(Peak("a", 10.0, 5.0, []), printable) == ""
