"""Every lesson runs in both languages, converges, and prints the same in both.

One test per template (none when there are no templates yet): the notebooks are built
from the template and the committed catalogue, executed with papermill into
build/executed/<locale>/, and their declared convergence is checked. The code is the
same in both languages, so every code cell's stdout and text/plain results must be too.
"""

from __future__ import annotations

import pytest

from tools import build, convergence
from tools.execute import execute
from tools.outputs import results_of, stdout_of
from tools.paths import DEFAULT_ROOT, LOCALES, Project
from tools.sources import load

PROJECT = Project(DEFAULT_ROOT)
LESSONS = PROJECT.lessons()


def _shown(notebook) -> list[tuple[int, str, list[str]]]:
    return [
        (index, stdout_of(cell), results_of(cell))
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
    ]


if LESSONS:

    @pytest.mark.parametrize(
        "lesson",
        [
            pytest.param(
                lesson,
                id=lesson.slug,
                marks=[pytest.mark.notebook, pytest.mark.xdist_group(f"lesson-{lesson.number}")],
            )
            for lesson in LESSONS
        ],
    )
    def test_lesson_runs_converges_and_matches_across_languages(lesson) -> None:
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
                assert out == out_en, f"cell {index}: stdout differs in {locale}"
                assert res == res_en, f"cell {index}: results differ in {locale}"
