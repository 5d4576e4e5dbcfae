"""Does the dashboard keep up? A replay of output entries into a real Redis at a fixed rate (5,000 a second by
default) while ``livetopic dashboard`` runs as its own process with a page subscribed to its events; then how
far behind it fell, how fast it read back a history, and its CPU. Comments are real ones
(``../shared/data/tvl19_chat``, else the bundled sample), labelled by their teacher scores, spread over the games
as channels; every output entry has its input entry (the feed looks texts up there).

    python tests/integration/bench_dashboard.py                         # 5,000/s for 30 s, 100,000 of history
    python tests/integration/bench_dashboard.py --rate 10000 --seconds 20

Prints a JSON summary (with the CPU model) on stdout; exits 1 if the dashboard did not keep up (it ended more
than two seconds of entries behind, or never caught up). Not a test: speed is measured here, not asserted in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import redis

from worker.inputs import label_columns, read_rows, text_of
from worker.tools.embedded import EmbeddedRedis
from worker.tools.process import DashboardProcess, child_env

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "tvl19_chat"
SAMPLE = ROOT / "worker" / "data" / "sample_chat.jsonl"
INPUT, OUTPUT = "livetopic:comments", "livetopic:topics"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def comments(limit: int) -> list[tuple[dict[str, str], dict[str, str]]]:
    """(input fields, output fields without source_id) for up to ``limit`` real comments."""
    files = sorted(DATA.glob("*.json")) if DATA.is_dir() else [SAMPLE]
    out = []
    for path in files:
        rows = read_rows(path)
        labels = label_columns(rows[0]) if rows else []
        for row in rows:
            text = text_of(row) or ""
            scores = {k: round(float(row[k]), 4) for k in labels if isinstance(row.get(k), int | float)}
            on = [k for k, v in scores.items() if v > 0.5]
            who = {"channel": path.stem, "user": str(row.get("user", ""))}
            out.append(
                (
                    {"text": text, **who},
                    {
                        **who,
                        "labels": json.dumps(on, ensure_ascii=False),
                        "scores": json.dumps(scores, ensure_ascii=False),
                        "model": "bench:1",
                    },
                )
            )
            if len(out) >= limit:
                return out
    return out


def write(r: redis.Redis, pool: list[tuple[dict[str, str], dict[str, str]]], start: int, n: int) -> None:
    """XADD ``n`` input entries and their outputs, in one pipeline."""
    pipe = r.pipeline(transaction=False)
    for k in range(start, start + n):
        pipe.xadd(INPUT, pool[k % len(pool)][0])
    ids = pipe.execute()
    pipe = r.pipeline(transaction=False)
    now = int(time.time() * 1000)
    for k, source in zip(range(start, start + n), ids, strict=True):
        sid = source.decode()
        fields = dict(pool[k % len(pool)][1], source_id=sid, latency_ms=str(max(0, now - int(sid.split("-")[0]))))
        pipe.xadd(OUTPUT, fields)
    pipe.execute()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ingested(dashboard: DashboardProcess) -> int:
    with urllib.request.urlopen(dashboard.url("/api/view?window=5m"), timeout=10) as resp:
        return int(json.loads(resp.read())["health"]["ingested"])


async def subscribe(url: str, stop: asyncio.Event, seen: list[int]) -> None:
    """A page's event stream: counts the messages it gets."""
    async with aiohttp.ClientSession() as session, session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
        async for line in resp.content:
            if line.startswith(b"data: "):
                seen[0] += 1
            if stop.is_set():
                return


async def replay(
    r: redis.Redis, dashboard: DashboardProcess, pool: list[Any], start: int, rate: float, seconds: float
) -> dict[str, Any]:
    stop, seen = asyncio.Event(), [0]
    page = asyncio.create_task(subscribe(dashboard.url("/events?window=5m"), stop, seen))
    chunk = max(1, int(rate / 20))  # 20 writes a second
    written, samples = 0, []
    t0 = time.monotonic()
    cpu0 = cpu_seconds(dashboard.popen.pid)
    while time.monotonic() - t0 < seconds:
        await asyncio.to_thread(write, r, pool, start + written, chunk)
        written += chunk
        if written % (chunk * 10) == 0:  # twice a second: how far behind is the dashboard?
            behind = start + written - await asyncio.to_thread(ingested, dashboard)
            samples.append(behind)
        await asyncio.sleep(max(0.0, written / rate - (time.monotonic() - t0)))
    offered = time.monotonic() - t0
    caught_up = None
    while time.monotonic() - t0 < offered + 30:
        if await asyncio.to_thread(ingested, dashboard) >= start + written:
            caught_up = time.monotonic() - t0 - offered
            break
        await asyncio.sleep(0.05)
    cpu = cpu_seconds(dashboard.popen.pid) - cpu0
    stop.set()
    page.cancel()
    return {
        "written": written,
        "offered_rate": round(written / offered),
        "seconds": round(offered, 1),
        "behind_max_entries": max(samples or [0]),
        "behind_last_entries": samples[-1] if samples else 0,
        "caught_up_after_s": None if caught_up is None else round(caught_up, 2),
        "dashboard_cpu_percent_of_one_core": round(100 * cpu / (offered + (caught_up or 0)), 1),
        "page_updates_per_s": round(seen[0] / offered, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5000.0, help="output entries per second (default: 5000)")
    parser.add_argument("--seconds", type=float, default=30.0, help="replay length (default: 30)")
    parser.add_argument(
        "--history",
        type=int,
        default=100_000,
        help="entries in the stream before the dashboard starts (default: 100000)",
    )
    args = parser.parse_args()
    pool = comments(20_000)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis", appendonly=False) as server:
        r = redis.Redis.from_url(server.url)
        for start in range(0, args.history, 5000):
            write(r, pool, start, min(5000, args.history - start))
        dashboard = DashboardProcess(
            ["--redis-url", server.url], Path(tmp) / "dashboard.log", env=child_env(), cwd=ROOT
        )
        with dashboard:
            t0 = time.monotonic()
            dashboard.wait_ready(timeout_s=300)
            history_s = time.monotonic() - t0  # includes the process start
            live = asyncio.run(replay(r, dashboard, pool, args.history, args.rate, args.seconds))
            rss = rss_mb(dashboard.popen.pid)
        summary = {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "comments": "tvl19_chat" if DATA.is_dir() else "sample",
            "history": {
                "entries": args.history,
                "ready_after_s": round(history_s, 2),
                "entries_per_s": round(args.history / history_s),
            },
            "replay": live,
            "dashboard_rss_mb": round(rss),
        }
    print(json.dumps(summary, indent=2))
    ok = live["caught_up_after_s"] is not None and live["behind_last_entries"] <= 2 * args.rate
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
