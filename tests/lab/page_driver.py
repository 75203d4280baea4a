"""Drives headless Chromium over the DevTools protocol inside the lab's Docker host.

Usage: page_driver.py URL READY_FILE SHOT_PATH MARKER. Opens URL, waits until the page
lists containers, writes READY_FILE (the test then makes a drop), waits until a drop
row naming MARKER appears (live, over SSE), saves a screenshot and prints what it saw
as JSON. Every wait is bounded; Chromium is always stopped.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

PORT = 9333
CHROMIUM = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--remote-debugging-port={PORT}", "--window-size=1100,1400"]  # fmt: skip
BOUND = 60.0


def page_socket() -> str:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/json/list", timeout=2) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("chromium's DevTools endpoint did not come up")


class Page:
    def __init__(self, url: str) -> None:
        self.ws = connect(url, max_size=64 << 20, open_timeout=30)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        self.ws.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == number:
                return message.get("result", {})  # type: ignore[no-any-return]

    def value(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait(self, expression: str) -> bool:
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            if self.value(expression):
                return True
            time.sleep(0.3)
        return False


def main() -> None:
    url, ready, shot, marker = sys.argv[1:5]
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [*CHROMIUM, f"--user-data-dir={profile}", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            page = Page(page_socket())
            listed = page.wait("document.querySelectorAll('#containers tbody tr').length > 0")
            Path(ready).write_text("ready")
            rows = "[...document.querySelectorAll('#drops tbody tr')].map(r => r.textContent)"
            live = page.wait(f"{rows}.some(t => t.includes({json.dumps(marker)}))")
            page.wait("document.getElementById('graph-img').complete")
            image = page.call("Page.captureScreenshot", format="png")
            Path(shot).write_bytes(base64.b64decode(image["data"]))
            report = {
                "listed": listed,
                "live": live,
                "containers": page.value(
                    "[...document.querySelectorAll('#containers tbody tr')].map(r => r.textContent)"
                ),
                "scripts": page.value(
                    "document.querySelectorAll('main script, main img[src=x]').length"
                ),
                "pwned": page.value("window.pwned === undefined ? null : window.pwned"),
                "graph": page.value("document.getElementById('graph-img').naturalWidth"),
            }
            print(json.dumps(report))
        finally:
            browser.terminate()
            try:
                browser.wait(10)
            except subprocess.TimeoutExpired:
                browser.kill()


if __name__ == "__main__":
    main()
