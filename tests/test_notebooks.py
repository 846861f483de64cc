"""Every lesson runs in both languages, converges, and prints the same in both.

One test class per template (none when there are no templates yet): the notebooks are built
from the template and the committed catalogue, executed with papermill into
build/executed/<locale>/, and their declared convergence is checked. The code is the
same in both languages but for the text it prints, so every code cell's stdout (with
that text turned back into English) and text/plain results must be the same too.
"""

from __future__ import annotations

import pytest

from tools import build, convergence, printed
from tools import catalog as catalogs
from tools.execute import execute
from tools.outputs import results_of, stdout_of
from tools.paths import DEFAULT_ROOT, LOCALES, Lesson, Project
from tools.sources import Sources, load

PROJECT = Project(DEFAULT_ROOT)
LESSONS = PROJECT.lessons()


def _shown(notebook) -> list[tuple[int, str, list[str]]]:
    return [
        (index, stdout_of(cell), results_of(cell))
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
    ]


def _in_english(sources: Sources, locale: str, stdout: str) -> str:
    """A cell's stdout with the lesson's printed translations turned back into English
    (any cell's: a function defined in one cell prints in another)."""
    lookup = catalogs.lookup(sources.catalog(locale))
    pairs = []
    for message in sources.messages:
        translation = lookup(message.msgid, message.context)
        if message.context == printed.CONTEXT and translation is not None:
            pairs.append((message.msgid, translation))
    return printed.untranslate(stdout, pairs)


def check_lesson(lesson: Lesson) -> None:
    """Build, execute and compare both languages of one lesson."""
    sources = load(PROJECT, lesson)
    executed = {}
    for locale in LOCALES:
        notebook = build.render(sources.template, lesson, locale, sources.catalog(locale))
        executed[locale] = execute(
            notebook, PROJECT.executed(lesson, locale), PROJECT.kernel_cwd(locale)
        )
        assert convergence.check(executed[locale]) == [], f"{lesson.slug} ({locale})"
    english = _shown(executed[LOCALES[0]])
    for locale in LOCALES[1:]:
        for (index, out_en, res_en), (_, out, res) in zip(
            english, _shown(executed[locale]), strict=True
        ):
            out = _in_english(sources, locale, out)
            assert out == out_en, f"cell {index}: stdout differs in {locale}"
            assert res == res_en, f"cell {index}: results differ in {locale}"


def _lesson_tests(lesson: Lesson) -> type:
    """`TestLesson02`: one class per lesson, because `make test` runs pytest with
    `--dist loadscope`, which hands out a class as one unit of work: the lessons run on
    different workers, beside nbval's notebooks, instead of one after another."""

    @pytest.mark.notebook
    def test_runs_converges_and_matches_across_languages(self: object) -> None:
        check_lesson(lesson)

    name = f"TestLesson{lesson.number}"
    body = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"{lesson.slug} in every language.",
        "test_runs_converges_and_matches_across_languages": (
            test_runs_converges_and_matches_across_languages
        ),
    }
    return type(name, (), body)


for _lesson in LESSONS:
    globals()[f"TestLesson{_lesson.number}"] = _lesson_tests(_lesson)
