"""Lessons 2 and 5 as a learner's browser shows them, in both languages.

The committed notebooks are exported to HTML with nbconvert and opened in headless
Chromium (tools/screenshots.py): every widget output must render from the saved state,
with no error, and the Hindi pages must draw their widgets' Devanagari with a font that
has Devanagari glyphs. Chromium and a Devanagari font are installed with apt-get when
missing; where that is impossible (not root, no apt), the tests skip and say why.
`make screenshots` runs the same pages and keeps pictures of them.
"""

from __future__ import annotations

import nbformat
import pytest

from tools import browser, build, compare, screenshots
from tools.paths import DEFAULT_ROOT, LOCALES, Project
from tools.sources import load

PROJECT = Project(DEFAULT_ROOT)
LESSONS = [PROJECT.find_lesson(key) for key in screenshots.LESSONS]
PAGES = [(lesson, locale) for lesson in LESSONS for locale in LOCALES]

pytestmark = [pytest.mark.notebook, pytest.mark.xdist_group("browser")]


def _not_current(lesson, locale) -> list[str]:
    """Why the committed notebook is not the one the build makes now, if it is not."""
    path = PROJECT.notebook(lesson, locale)
    if not path.exists():
        return ["missing"]
    sources = load(PROJECT, lesson)
    committed = nbformat.read(path, as_version=4)
    expected = build.render(sources.template, lesson, locale, sources.catalog(locale))
    problems = compare.differences(expected, committed)
    if compare.unexecuted(committed):
        problems.append("not executed")
    if compare.unsaved_widgets(committed):
        problems.append("widget state not saved")
    return problems


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every page rendered once, in one browser (a few seconds in all)."""
    stale = {
        f"{PROJECT.relative(PROJECT.notebook(lesson, locale))}": problems
        for lesson, locale in PAGES
        if (problems := _not_current(lesson, locale))
    }
    assert not stale, f"committed notebooks are not current, run `make translate`: {stale}"
    try:
        results = screenshots.capture(
            PROJECT, LESSONS, LOCALES, tmp_path_factory.mktemp("html")
        )
    except browser.Unavailable as error:
        pytest.skip(f"no headless browser can be had on this machine: {error}")
    return {(result.lesson, result.locale): result for result in results}


@pytest.mark.parametrize(
    ("lesson", "locale"), PAGES, ids=[f"{lesson.number}-{locale}" for lesson, locale in PAGES]
)
def test_every_widget_renders_from_the_saved_state(pages: dict, lesson, locale) -> None:
    page = pages[lesson.slug, locale]
    assert page.errors == []
    assert page.views >= 3  # dashboard or inspector, and the try-it-yourself panel
    assert page.rendered == page.views


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.number for lesson in LESSONS])
def test_hindi_widgets_are_drawn_with_a_devanagari_font(pages: dict, lesson) -> None:
    page = pages[lesson.slug, "hi"]
    devanagari = set(browser.devanagari_families())
    assert page.fonts, "no Hindi widget text was found on the page"
    for selector, families in page.fonts.items():
        assert devanagari & set(families), f"{selector} is drawn with {families} only"
    assert ".fl-playground .widget-slider .widget-label" in page.fonts
