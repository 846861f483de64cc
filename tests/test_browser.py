"""Lessons 2 and 5 as a learner's browser shows them, in both languages.

The committed notebooks are exported to HTML with nbconvert and opened in Debian's
headless Chromium through Playwright (tools/screenshots.py): every widget output must
render from the saved state, with no error and no "disconnected" mark, and the Hindi
pages must draw their widgets' Devanagari with a font that has Devanagari glyphs.
Chromium and the font come from `make system-packages`; a test installs nothing. Without
them the tests fail saying so (they skip only where there is no apt-get to get them).
Whether the committed notebooks are current is i18n-check's job, not repeated here.
`make screenshots` runs the same pages and keeps pictures of them.
"""

from __future__ import annotations

import shutil

import pytest

from tools import browser, screenshots
from tools.paths import DEFAULT_ROOT, LOCALES, Project

PROJECT = Project(DEFAULT_ROOT)
LESSONS = [PROJECT.find_lesson(key) for key in screenshots.LESSONS]
PAGES = [(lesson, locale) for lesson in LESSONS for locale in LOCALES]

pytestmark = [pytest.mark.notebook]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every page rendered once, in one browser (a few seconds in all)."""
    try:
        results = screenshots.capture(PROJECT, LESSONS, LOCALES, tmp_path_factory.mktemp("html"))
    except browser.Unavailable as error:
        if shutil.which("apt-get") is None:
            pytest.skip(f"no headless browser can be had on this machine: {error}")
        pytest.fail(str(error))
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
