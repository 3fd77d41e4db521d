"""A small W3C WebDriver client for the console test: starts Debian's chromedriver, opens one
headless Chromium session and speaks the WebDriver HTTP protocol with urllib (no selenium, so
nothing more to pin).

Chromium runs with the flags this machine needs (no sandbox as root, no GPU, no QUIC, none of
its background connections to Google, which the closed network refuses) and a fresh profile.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]
# The W3C element reference key.
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriverError(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """One chromedriver process and one headless Chromium session."""

    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="weir-chromium-")
        self.port = _free_port()
        self.driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self._call("GET", "/status")
                break
            except (OSError, WebDriverError):
                if time.monotonic() > deadline or self.driver.poll() is not None:
                    self.close()
                    raise WebDriverError("chromedriver did not start")
                time.sleep(0.1)
        options = {"binary": CHROMIUM, "args": CHROMIUM_FLAGS + [f"--user-data-dir={self.profile}"]}
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        self.session = self._call("POST", "/session", {"capabilities": capabilities})["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as err:
            raise WebDriverError(f"{method} {path}: {err.read().decode(errors='replace')}") from err

    def _session(self, method: str, path: str, body: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url: str) -> None:
        self._session("POST", "/url", {"url": url})

    def script(self, source: str, *args):
        return self._session("POST", "/execute/sync", {"script": source, "args": list(args)})

    def find(self, css: str) -> str | None:
        """The first element matching `css` now, or None."""
        found = self._session("POST", "/elements", {"using": "css selector", "value": css})
        return found[0][ELEMENT] if found else None

    def text(self, css: str, timeout: float = 15.0, contains: str = "") -> str:
        """The visible text of the first element matching `css`, once it exists and holds
        `contains`; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            # Found and read in one script: the page re-renders while it polls, so an element
            # found by one call may be gone ("stale") by the next.
            text = self.script(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null", css
            )
            if text is not None:
                last = text
                if contains in last:
                    return last
            if time.monotonic() > deadline:
                raise WebDriverError(f"no element {css!r} with {contains!r} within {timeout} s (last text: {last!r})")
            time.sleep(0.1)

    def texts(self, css: str) -> list[str]:
        return self.script(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText)", css
        )

    def screenshot(self, path) -> None:
        png = base64.b64decode(self._session("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)

    def close(self) -> None:
        try:
            if getattr(self, "session", None):
                self._session("DELETE", "")
        except (OSError, WebDriverError):
            pass
        self.driver.terminate()
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
