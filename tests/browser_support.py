"""A headless Chromium driven over the Chrome DevTools Protocol (CDP) with aiohttp: no extra
dependency and no browser download (Debian's `chromium` package). One process per test module
(tests/fixtures/browser.py); each test gets a fresh browser context (its own cookie jar) with
one tab, so tests never see each other's cookies.

Host names other than 127.0.0.1 (`webapp.test`, `evil.test`, ...) resolve to 127.0.0.1 inside
the browser (`--host-resolver-rules`), so a page served by the test on another port can be
same-origin, same-site (127.0.0.1, another port) or cross-site (another host name)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Plain http on made-up hosts: do not try https first.
    "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
    "--host-resolver-rules=MAP *.test 127.0.0.1",
    "--remote-debugging-port=0",
    "about:blank",
]


class ChromiumProcess:
    """The browser process: started once per module, its DevTools websocket URL known."""

    def __init__(self) -> None:
        assert CHROMIUM is not None
        self.profile = Path(tempfile.mkdtemp(prefix="nexgate-chromium-"))
        self.proc = subprocess.Popen(
            [CHROMIUM, f"--user-data-dir={self.profile}", *LAUNCH_FLAGS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start (no DevToolsActivePort)")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws_url = f"ws://127.0.0.1:{port}{path}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class CdpError(Exception):
    pass


class Tab:
    """One tab in its own browser context, attached with a flat CDP session."""

    def __init__(self, conn: aiohttp.ClientWebSocketResponse) -> None:
        self._conn = conn
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self._reader = asyncio.create_task(self._read())
        self.session_id: str | None = None
        self.context_id: str | None = None

    async def _read(self) -> None:
        async for msg in self._conn:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = msg.json()
            if "id" in data:
                future = self._replies.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            elif "method" in data:
                for name, waiter in list(self._events):
                    if name == data["method"] and not waiter.done():
                        waiter.set_result(data.get("params", {}))
                        self._events.remove((name, waiter))

    async def send(self, method: str, params: dict[str, Any] | None = None, *, page: bool = True):
        msg: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params or {}}
        if page and self.session_id is not None:
            msg["sessionId"] = self.session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[msg["id"]] = future
        await self._conn.send_json(msg)
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def expect_event(self, method: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._events.append((method, future))
        return future

    async def goto(self, url: str) -> None:
        loaded = self.expect_event("Page.loadEventFired")
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CdpError(f"navigate {url}: {result['errorText']}")
        await asyncio.wait_for(loaded, 30)

    async def run(self, script: str) -> Any:
        """Evaluate `script` (the body of an async function) in the page; return its value."""
        result = await self.send(
            "Runtime.evaluate",
            {
                "expression": f"(async () => {{ {script} }})()",
                "awaitPromise": True,
                "returnByValue": True,
            },
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CdpError(f"script failed: {text}")
        return result["result"].get("value")

    async def cookies(self) -> list[dict[str, Any]]:
        """Every cookie this tab's browser context holds."""
        result = await self.send(
            "Storage.getCookies", {"browserContextId": self.context_id}, page=False
        )
        return result["cookies"]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send(
                "Target.disposeBrowserContext", {"browserContextId": self.context_id}, page=False
            )
        await self._conn.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def open_tab(chromium: ChromiumProcess) -> AsyncIterator[Tab]:
    async with aiohttp.ClientSession() as http:
        conn = await http.ws_connect(chromium.ws_url, max_msg_size=0)
        tab = Tab(conn)
        try:
            created = await tab.send("Target.createBrowserContext", page=False)
            tab.context_id = created["browserContextId"]
            target = await tab.send(
                "Target.createTarget",
                {"url": "about:blank", "browserContextId": tab.context_id},
                page=False,
            )
            attached = await tab.send(
                "Target.attachToTarget",
                {"targetId": target["targetId"], "flatten": True},
                page=False,
            )
            tab.session_id = attached["sessionId"]
            await tab.send("Page.enable")
            yield tab
        finally:
            await tab.close()


PAGE = b"<!doctype html><html><head><title>page</title></head><body>test page</body></html>"


@contextlib.asynccontextmanager
async def page_server(port: int) -> AsyncIterator[None]:
    """A blank HTML page at every path of 127.0.0.1:`port`: the origin a test's script runs in
    (reached as http://127.0.0.1:port, or as http://<name>.test:port for another site)."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()
