"""Lessons as a learner's browser shows them: the browser test's checks, and screenshots.

A committed notebook is exported to HTML with nbconvert's lab template, which embeds the
saved widget state; the page loads the widget renderer from build/vendor/ rather than
from a CDN (tools/browser.py). In headless Chromium, each widget output must become a
rendered view, with no error widget and no console error; on a Hindi page, the
widgets' Devanagari labels must be drawn with a font that has Devanagari glyphs.
`make screenshots` writes each page, and each widget on it, to build/screenshots/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from tools import browser, widget_state
from tools.paths import Lesson, Project

#: the lessons with a "try it yourself" section, checked by the browser test
LESSONS = ("02", "05")
#: elements whose text a Hindi learner reads, in the order tried for the font check
HINDI_TEXT = (
    ".fl-dashboard .fl-title",
    ".fl-chart .fl-axis",
    ".fl-inspector th",
    ".fl-playground .widget-slider .widget-label",
    ".fl-accuracy .fl-caption",
)

_VIEWS = 'script[type="application/vnd.jupyter.widget-view+json"]'
_COUNT_RENDERED = f"""
Array.from(document.querySelectorAll('{_VIEWS}')).filter(function (tag) {{
  var area = tag.previousElementSibling;
  return area && area.classList.contains('widget-subarea')
    && area.querySelector('.jupyter-widgets, .lm-Widget') !== null
    && area.getBoundingClientRect().height > 0;
}}).length
"""
_ERRORS = """
(function () {
  var found = Array.from(document.querySelectorAll('.jupyter-widgets-error-widget'))
    .map(function (e) { return 'error widget: ' + e.innerText.slice(0, 200); });
  var text = document.body.innerText;
  ['Error displaying widget', 'Could not create', 'Could not find model'].forEach(function (m) {
    if (text.indexOf(m) >= 0) { found.push('page says: ' + m); }
  });
  return found;
})()
"""
_WIDGET_BOXES = """
Array.from(document.querySelectorAll('.widget-subarea')).map(function (area) {
  var box = area.getBoundingClientRect();
  return {x: box.left + window.scrollX - 8, y: box.top + window.scrollY - 8,
          width: box.width + 16, height: box.height + 16};
}).filter(function (box) { return box.height > 24; })
"""
_HAS_DEVANAGARI = "/[\\u0900-\\u097F]/.test(document.querySelector({selector!r}).textContent)"


@dataclass
class Rendered:
    """What the browser showed for one exported notebook."""

    lesson: str
    locale: str
    html: Path
    views: int = 0
    rendered: int = 0
    errors: list[str] = field(default_factory=list)
    #: selector → the font families Chromium drew its Devanagari text with
    fonts: dict[str, list[str]] = field(default_factory=dict)
    screenshots: list[Path] = field(default_factory=list)


def export(notebook: Path, html: Path, assets: browser.Assets) -> int:
    """Write the notebook as HTML that renders its widgets offline; the number of views."""
    node = nbformat.read(notebook, as_version=4)
    exporter = HTMLExporter(template_name="lab")
    exporter.require_js_url = assets.require_js.as_uri()
    exporter.widget_renderer_url = assets.widget_renderer.as_uri()
    body, _resources = exporter.from_notebook_node(node)
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(body, encoding="utf-8")
    return len(list(widget_state.shown(node)))


def look(page: browser.Page, result: Rendered, views: int, timeout: float = 30) -> Rendered:
    """Open the page and fill in what rendered, the errors, and the Hindi fonts."""
    page.open(result.html.as_uri())
    result.views = page.evaluate(f"document.querySelectorAll('{_VIEWS}').length")
    if result.views != views:
        result.errors.append(f"the HTML has {result.views} widget outputs, the notebook {views}")
    try:
        page.wait_for(f"({_COUNT_RENDERED}) >= {max(views, 1)}", timeout=timeout)
    except browser.ProtocolError as error:
        result.errors.append(str(error))
    result.rendered = page.evaluate(_COUNT_RENDERED)
    result.errors += page.evaluate(_ERRORS)
    result.errors += [f"console: {message}" for message in page.console_errors()]
    if result.locale != "en":
        for selector in HINDI_TEXT:
            if not page.evaluate(f"document.querySelector({selector!r}) !== null"):
                continue
            if not page.evaluate(_HAS_DEVANAGARI.format(selector=selector)):
                result.errors.append(f"{selector}: no Devanagari text on the {result.locale} page")
                continue
            used = page.fonts(selector)
            result.fonts[selector] = [f["familyName"] for f in used if f.get("glyphCount")]
    return result


def shoot(page: browser.Page, result: Rendered, directory: Path) -> None:
    """The whole page, and each widget on it, as PNGs under `directory`."""
    stem = directory / result.locale / Path(result.html).stem
    result.screenshots.append(page.screenshot(stem.with_suffix(".png")))
    for number, box in enumerate(page.evaluate(_WIDGET_BOXES), start=1):
        clip = {key: max(0, round(value)) for key, value in box.items()}
        shot = page.screenshot(stem / f"widget-{number:02d}.png", clip)
        result.screenshots.append(shot)


def capture(
    project: Project,
    lessons: list[Lesson],
    locales: tuple[str, ...],
    html_dir: Path,
    shots_dir: Path | None = None,
    executed: bool = False,
) -> list[Rendered]:
    """Export, open and check every (lesson, locale); screenshots when `shots_dir` is given.

    The committed notebooks are used, or with `executed` what `run` left in build/executed/.
    """
    chromium = browser.ensure_browser()
    assets = browser.vendor(project.root / "build" / "vendor")
    results = []
    # screenshots at twice the size make small Devanagari easy to check
    with browser.launch(chromium, scale=2 if shots_dir is not None else 1) as chrome:
        page = chrome.page()
        for lesson in lessons:
            for locale in locales:
                if executed:
                    notebook = project.executed(lesson, locale)
                else:
                    notebook = project.notebook(lesson, locale)
                html = html_dir / locale / f"{lesson.slug}.html"
                views = export(notebook, html, assets)
                result = look(page, Rendered(lesson.slug, locale, html), views)
                if shots_dir is not None:
                    shoot(page, result, shots_dir)
                results.append(result)
    return results


def report(results: list[Rendered], project: Project) -> list[str]:
    """One line per page for the terminal."""
    lines = []
    for result in results:
        fonts = sorted({f for families in result.fonts.values() for f in families})
        lines.append(
            f"{result.lesson} ({result.locale}): {result.rendered}/{result.views} widgets rendered"
            + (f", Devanagari drawn with {', '.join(fonts)}" if fonts else "")
            + (
                f", {len(result.screenshots)} screenshots in "
                f"{project.relative(result.screenshots[0].parent)}"
                if result.screenshots
                else ""
            )
        )
        lines += [f"  problem: {error}" for error in result.errors]
    return lines
