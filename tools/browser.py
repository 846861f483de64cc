"""Headless Chromium for the browser test and `make screenshots`: get it, then drive it.

What is needed, and where it comes from:

* Debian's `chromium`, and a Devanagari font (`fonts-lohit-deva`) so that Hindi pages
  have glyphs: installed with apt-get when missing (as root; else `Unavailable`);
* the widget renderer that an exported notebook loads (`@jupyter-widgets/html-manager`)
  and RequireJS, which it needs: nbconvert points at a CDN, which a test machine cannot
  reach, so they are fetched once from the npm registry with `npm pack` into
  build/vendor/ and the HTML points there instead.

The browser is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
commands on its fd 3, answers on its fd 4, each message ending in a NUL byte), so no
port is opened and no websocket library is needed. Every wait has a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APT_PACKAGES = ("chromium", "fonts-lohit-deva")
#: the renderer matching ipywidgets 8 (widget protocol 2), and the AMD loader it needs
NPM_PACKAGES = {"@jupyter-widgets/html-manager": "1.0.15", "requirejs": "2.3.8"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: a Devanagari letter (क) that a font must have to count as a Devanagari font
DEVANAGARI_KA = "0915"


class Unavailable(RuntimeError):
    """No browser (or no renderer) can be had on this machine; the message says why."""


class ProtocolError(RuntimeError):
    """Chromium answered a command with an error, or did not answer in time."""


# ---- getting what is needed ------------------------------------------------------------


def find_chromium() -> str | None:
    """`$CHROMIUM`, else the first Chromium or Chrome on PATH."""
    wanted = os.environ.get("CHROMIUM")
    if wanted:
        return shutil.which(wanted) or (wanted if Path(wanted).is_file() else None)
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def devanagari_families() -> list[str]:
    """Font families fontconfig has that contain Devanagari letters."""
    if shutil.which("fc-list") is None:
        return []
    listing = subprocess.run(
        ["fc-list", f":charset={DEVANAGARI_KA}", "family"],
        capture_output=True, text=True, timeout=30, check=False,
    ).stdout
    names = {name.strip() for line in listing.splitlines() for name in line.split(",")}
    return sorted(name for name in names if name)


def apt_install(packages: tuple[str, ...]) -> None:
    """Install Debian packages, refreshing the package lists once if that is needed."""
    if shutil.which("apt-get") is None:
        raise Unavailable(f"no apt-get here to install {', '.join(packages)}")
    if os.geteuid() != 0:
        raise Unavailable(f"not root, so cannot apt-get install {', '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    for attempt in range(2):
        if attempt == 1:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True,
                           timeout=600, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900,
                              check=False)
        if done.returncode == 0:
            return
    raise Unavailable(f"apt-get install {' '.join(packages)} failed: {done.stderr[-500:]}")


def ensure_browser() -> str:
    """Chromium's path, installing it and a Devanagari font first if they are missing."""
    missing = []
    if find_chromium() is None:
        missing.append(APT_PACKAGES[0])
    if not devanagari_families():
        missing.append(APT_PACKAGES[1])
    if missing:
        apt_install(tuple(missing))
    chromium = find_chromium()
    if chromium is None:
        raise Unavailable("chromium is still not on PATH after installing it")
    return chromium


@dataclass(frozen=True)
class Assets:
    """The local copies an exported notebook loads instead of the CDN's."""

    require_js: Path
    widget_renderer: Path


def vendor(directory: Path) -> Assets:
    """The renderer and RequireJS in `directory`, fetched with `npm pack` if absent."""
    for package, version in NPM_PACKAGES.items():
        target = directory / f"{package.replace('/', '__')}-{version}"
        if (target / "package.json").is_file():
            continue
        npm = shutil.which("npm")
        if npm is None:
            apt_install(("npm",))
            npm = shutil.which("npm")
        if npm is None:
            raise Unavailable("npm is needed to fetch the widget renderer, and there is none")
        with tempfile.TemporaryDirectory() as scratch:
            packed = subprocess.run(
                [npm, "pack", f"{package}@{version}", "--silent", "--pack-destination", scratch],
                capture_output=True, text=True, timeout=300, check=False,
            )
            archives = list(Path(scratch).glob("*.tgz"))
            if packed.returncode != 0 or not archives:
                raise Unavailable(f"npm pack {package}@{version} failed: {packed.stderr[-500:]}")
            unpacked = Path(scratch) / "unpacked"
            with tarfile.open(archives[0]) as archive:
                archive.extractall(unpacked, filter="data")
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(unpacked / "package"), target)
    renderer = "@jupyter-widgets/html-manager".replace("/", "__")
    return Assets(
        require_js=directory / f"requirejs-{NPM_PACKAGES['requirejs']}" / "require.js",
        widget_renderer=directory
        / f"{renderer}-{NPM_PACKAGES['@jupyter-widgets/html-manager']}"
        / "dist"
        / "embed-amd.js",
    )


# ---- the DevTools protocol -------------------------------------------------------------


def _above(fd: int, lowest: int) -> int:
    """The same pipe end moved to the lowest free descriptor >= `lowest`."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, lowest)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium; `with Browser(path) as browser: page = browser.page()`."""

    def __init__(self, chromium: str, width: int = 1100, height: int = 900) -> None:
        self.chromium, self.width, self.height = chromium, width, height
        self._next = 0
        self._buffer = b""
        self.events: list[dict] = []

    def __enter__(self) -> Browser:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        to_browser, self._commands = os.pipe()
        self._answers, from_browser = os.pipe()
        # above fd 9, so that placing them at 3 and 4 cannot overwrite one with the other
        to_browser, from_browser = (_above(fd, 10) for fd in (to_browser, from_browser))
        arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
            "--allow-file-access-from-files", "--remote-debugging-pipe",
            f"--user-data-dir={self._profile.name}", f"--window-size={self.width},{self.height}",
            "about:blank",
        ]
        # bash puts the two pipe ends where Chromium looks for them, fds 3 and 4 (dash
        # cannot: it only redirects descriptors 0 to 9)
        self._process = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}',
             self.chromium, *arguments],
            pass_fds=(to_browser, from_browser),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        return self

    def __exit__(self, *_exc: object) -> None:
        with contextlib.suppress(ProtocolError, OSError):
            self.send("Browser.close", timeout=10)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        for fd in (self._commands, self._answers):
            os.close(fd)
        self._profile.cleanup()

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict:
        """Run one command and return its result (events that arrive meanwhile are kept)."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._receive(deadline, method)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise ProtocolError(f"{method}: {answer['error'].get('message')}")
                return answer.get("result", {})
            self.events.append(answer)

    def _receive(self, deadline: float, waiting_for: str) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"{waiting_for}: no answer from Chromium in time")
            ready, _, _ = select.select([self._answers], [], [], left)
            if ready:
                chunk = os.read(self._answers, 1 << 20)
                if not chunk:
                    raise ProtocolError(f"{waiting_for}: Chromium closed the pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self, session["sessionId"])
        for domain in ("Page", "Runtime", "DOM", "CSS", "Network"):
            page.send(f"{domain}.enable")
        # an exported notebook still names CDNs (MathJax); fail those at once, offline
        page.send("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        return page


class Page:
    """One tab, attached as a flat session."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def open(self, url: str, timeout: float = 30) -> None:
        """Navigate and wait for the load event."""
        self.browser.events.clear()
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.browser.events):
            if time.monotonic() > deadline:
                raise ProtocolError(f"{url} did not finish loading in time")
            self.evaluate("1")  # lets events arrive

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise ProtocolError(f"{expression[:60]}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30, interval: float = 0.2) -> Any:
        """Poll until the expression is truthy; return its value, or raise at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise ProtocolError(f"still false after {timeout}s: {expression[:80]}")
            time.sleep(interval)

    def console_errors(self) -> list[str]:
        """console.error calls and uncaught exceptions since the page was opened."""
        found = []
        for event in self.browser.events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.exceptionThrown":
                found.append(params.get("exceptionDetails", {}).get("text", "exception"))
            if event.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(" ".join(str(a.get("value", a.get("description", "")))
                                      for a in params.get("args", [])))
        return found

    def fonts(self, selector: str) -> list[dict]:
        """The fonts Chromium actually used for the text of the first element matching
        `selector`: [{"familyName", "glyphCount", ...}] (CSS.getPlatformFontsForNode)."""
        root = self.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise ProtocolError(f"no element matches {selector!r}")
        return self.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]

    def screenshot(self, path: Path, clip: dict | None = None, max_height: int = 16000,
                   scale: float = 1) -> Path:
        """A PNG of the whole page, or of `clip` ({x, y, width, height} in CSS pixels),
        `scale` device pixels per CSS pixel (2 makes small Devanagari easy to check)."""
        if clip is None:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"],
                    "height": min(size["height"], max_height)}
        shot = self.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": {**clip, "scale": scale}},
            timeout=60,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
