"""Headless Chromium (Debian's ``chromium``) driven over the Chrome DevTools protocol with aiohttp's websocket
client: open a page, evaluate JavaScript, collect console errors, take screenshots. No driver binary, no
browser download; a test skips only when no Chromium is installed (``.ci/run`` installs it)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..cli.helpers import spawn

__all__ = ["Browser", "find_chromium"]

CJK_FONT = re.compile(
    r"CJK|Han Sans|Han Serif|WenQuanYi|Droid Sans Fallback|AR PL|Heiti|JhengHei|PingFang|"
    r"Hiragino|YaHei|SimSun|SimHei|MingLiU|Ming",
    re.I,
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
)


def find_chromium() -> str:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium installed (Debian: apt-get install chromium; .ci/run installs it when missing)")


class Browser:
    """One Chromium with one page. ``errors`` collects console errors, uncaught exceptions and failed loads."""

    def __init__(
        self, proc: subprocess.Popen[bytes], session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse
    ) -> None:
        self.proc, self.session, self.ws = proc, session, ws
        self.errors: list[str] = []
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._loaded = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @staticmethod
    def _launch(profile: Path, log_path: Path, width: int, height: int) -> subprocess.Popen[bytes]:
        """Chromium with a fresh profile; it writes its DevTools port into ``profile/DevToolsActivePort``."""
        profile.mkdir(parents=True)
        argv = [find_chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
        return spawn(argv, log=log_path)

    @classmethod
    async def start(cls, workdir: Path, width: int = 1400, height: int = 1000) -> Browser:
        profile = workdir / "chromium-profile"
        proc = cls._launch(profile, workdir / "chromium.log", width, height)
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {proc.returncode}: {(workdir / 'chromium.log').read_text()}")
            if port_file.exists() and len(port_file.read_text().splitlines()) >= 2:
                break
            await asyncio.sleep(0.1)
        else:
            proc.kill()
            raise RuntimeError("chromium did not open its DevTools port within 30 s")
        port = int(port_file.read_text().splitlines()[0])
        session = aiohttp.ClientSession()
        async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        page = next(t for t in targets if t["type"] == "page")
        ws = await session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        browser = cls(proc, session, ws)
        for domain in ("Page", "Runtime", "Log"):
            await browser.send(f"{domain}.enable")
        return browser

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = msg.json()
            if "id" in data:
                future = self._waiting.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self._event(data.get("method", ""), data.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired":
            self._loaded.set()
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(
                "console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            )
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(
                "exception: " + str(details.get("exception", {}).get("description") or details.get("text"))
            )
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry.get('text')} ({entry.get('url', '')})")

    async def send(self, method: str, params: dict[str, Any] | None = None, timeout_s: float = 30) -> Any:
        n = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[n] = future
        await self.ws.send_json({"id": n, "method": method, "params": params or {}})
        reply = await asyncio.wait_for(future, timeout_s)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def open(self, url: str, timeout_s: float = 30) -> None:
        self._loaded.clear()
        await self.send("Page.navigate", {"url": url})
        await asyncio.wait_for(self._loaded.wait(), timeout_s)

    async def eval(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 30) -> Any:
        """Evaluate ``expression`` until it is truthy; its value."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            value = await self.eval(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {expression!r} (last: {value!r})")
            await asyncio.sleep(0.2)

    async def click(self, selector: str) -> None:
        found = await self.eval(
            f"(() => {{ const el = document.querySelector({selector!r}); "
            "if (!el) return false; el.click(); return true; })()"
        )
        assert found, f"nothing matches {selector!r}"

    async def hover(self, selector: str) -> None:
        box = await self.eval(
            f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect(); "
            "return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        await self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": box[0], "y": box[1]})

    async def fonts_for(self, selector: str) -> dict[str, int]:
        """The fonts Chromium drew the text of the first node matching ``selector`` with: family → glyphs. A live
        page may replace the node between the query and the question (the dashboard re-renders its tables as
        results arrive): then the node is looked up again, a few times."""
        await self.send("DOM.enable")
        await self.send("CSS.enable")
        for attempt in range(5):
            root = (await self.send("DOM.getDocument"))["root"]["nodeId"]
            node = (await self.send("DOM.querySelector", {"nodeId": root, "selector": selector}))["nodeId"]
            assert node, f"nothing matches {selector!r}"
            try:
                fonts = (await self.send("CSS.getPlatformFontsForNode", {"nodeId": node}))["fonts"]
            except RuntimeError as exc:
                if "Could not find node" not in str(exc) or attempt == 4:
                    raise
                continue
            return {f["familyName"]: int(f["glyphCount"]) for f in fonts}
        raise AssertionError("unreachable")

    async def draws_cjk(self, selector: str) -> bool:
        """Whether every glyph of the (Chinese) text at ``selector`` comes from a font with Chinese glyphs: a
        character no font has is drawn as a box by a fallback font (DejaVu Sans and the like)."""
        fonts = await self.fonts_for(selector)
        return bool(fonts) and all(CJK_FONT.search(family) for family in fonts)

    async def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = await self.eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(
                clip={"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}, captureBeyondViewport=True
            )
        result = await self.send("Page.captureScreenshot", params)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(result["data"]))
        return path

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send("Browser.close"), 5)
        await self.ws.close()
        await self.session.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
