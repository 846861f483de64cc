"""Headless Chromium for the browser tests and `make screenshots`, driven by Playwright.

What is needed, and where it comes from:

* Debian's `chromium`, and a Devanagari font (`fonts-lohit-deva`) so that Hindi pages
  have glyphs: `make system-packages` installs them (the tests never install anything;
  without them they raise `Unavailable`, which the tests turn into a skip that says so).
  Playwright's own browser downloads are not used: Playwright starts Debian's Chromium;
* the widget renderer that an exported notebook loads (`@jupyter-widgets/html-manager`)
  and RequireJS, which it needs: nbconvert points at a CDN, which a test machine cannot
  reach, so they are fetched once from the npm registry with `npm pack` into
  build/vendor/ (`make browser`) and the HTML points there instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the renderer matching ipywidgets 8 (widget protocol 2), and the AMD loader it needs
NPM_PACKAGES = {"@jupyter-widgets/html-manager": "1.0.15", "requirejs": "2.3.8"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: how an `offline` page's web requests fail (Chromium logs it as ERR_BLOCKED_BY_CLIENT)
BLOCKED = "blockedbyclient"
#: a Devanagari letter (क) that a font must have to count as a Devanagari font
DEVANAGARI_KA = "0915"


class Unavailable(RuntimeError):
    """No browser (or no renderer) can be had on this machine; the message says why."""


class ProtocolError(RuntimeError):
    """A page did not load, or a condition did not become true, in time."""


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
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout
    names = {name.strip() for line in listing.splitlines() for name in line.split(",")}
    return sorted(name for name in names if name)


def ensure_browser() -> str:
    """Chromium's path; `Unavailable` naming what to install when it or the font is missing."""
    chromium = find_chromium()
    missing = [] if chromium else ["chromium"]
    if not devanagari_families():
        missing.append("a Devanagari font (fonts-lohit-deva)")
    if missing or chromium is None:
        raise Unavailable(f"{' and '.join(missing)} not installed; run `make system-packages`")
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
            raise Unavailable(
                "npm is needed to fetch the widget renderer; run `make system-packages`"
            )
        with tempfile.TemporaryDirectory() as scratch:
            packed = subprocess.run(
                [npm, "pack", f"{package}@{version}", "--silent", "--pack-destination", scratch],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
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


# ---- driving it -------------------------------------------------------------------------


@contextmanager
def launch(
    chromium: str, width: int = 1100, height: int = 900, scale: float = 1
) -> Iterator[Browser]:
    """Headless Chromium through Playwright; closed (and Playwright stopped) on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chrome = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--allow-file-access-from-files",
            ],
        )
        try:
            yield Browser(chrome, width, height, scale)
        finally:
            chrome.close()


class Browser:
    """One Chromium; `page()` opens a tab of the configured size."""

    def __init__(self, chrome: Any, width: int, height: int, scale: float) -> None:
        self.chrome, self.width, self.height, self.scale = chrome, width, height, scale

    def page(self, offline: bool = True) -> Page:
        """A new tab; `offline` fails every http(s) request at once (an exported notebook
        still names CDNs, MathJax's for one), so no test waits on the network."""
        context = self.chrome.new_context(
            viewport={"width": self.width, "height": self.height},
            device_scale_factor=self.scale,
        )
        page = context.new_page()
        if offline:
            page.route("http://**/*", lambda route: route.abort(BLOCKED))
            page.route("https://**/*", lambda route: route.abort(BLOCKED))
        return Page(page)


class Page:
    """One tab, remembering its console errors and uncaught exceptions."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message: Any) -> None:
        # a request `offline` refused on purpose is not the page's error
        if message.type == "error" and "ERR_BLOCKED_BY_CLIENT" not in message.text:
            self.errors.append(message.text)

    def open(self, url: str, timeout: float = 30) -> None:
        """Navigate and wait for the load event."""
        from playwright.sync_api import Error as PlaywrightError

        self.errors.clear()
        try:
            self.page.goto(url, wait_until="load", timeout=timeout * 1000)
        except PlaywrightError as error:
            raise ProtocolError(f"{url} did not load: {error}") from error

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise)."""
        return self.page.evaluate(expression)

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """Wait until the expression is truthy; return its value, or raise at the deadline."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            handle = self.page.wait_for_function(expression, timeout=timeout * 1000)
        except PlaywrightError as error:
            raise ProtocolError(f"still false after {timeout}s: {expression[:80]}") from error
        return handle.json_value()

    def console_errors(self) -> list[str]:
        """console.error calls and uncaught exceptions since the page was opened."""
        return list(self.errors)

    def fonts(self, selector: str) -> list[dict]:
        """The fonts Chromium actually used for the text of the first element matching
        `selector`: [{"familyName", "glyphCount", ...}] (DevTools' CSS.getPlatformFontsForNode,
        which Playwright reaches through a CDP session)."""
        session = self.page.context.new_cdp_session(self.page)
        try:
            session.send("DOM.enable")
            session.send("CSS.enable")
            root = session.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
            node = session.send("DOM.querySelector", {"nodeId": root, "selector": selector})
            if not node["nodeId"]:
                raise ProtocolError(f"no element matches {selector!r}")
            fonts = session.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
            return list(fonts["fonts"])
        finally:
            session.detach()

    def screenshot(self, path: Path, clip: dict | None = None, max_height: int = 16000) -> Path:
        """A PNG of the whole page (at most `max_height` CSS pixels), or of `clip`."""
        if clip is None:
            height = min(self.evaluate("document.documentElement.scrollHeight"), max_height)
            clip = {"x": 0, "y": 0, "width": self.page.viewport_size["width"], "height": height}
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), clip=clip, full_page=True)
        return path
