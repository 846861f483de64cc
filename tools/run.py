"""`run LESSON LOCALE`: execute one notebook headless and show what it printed.

The notebook is built from the template and the committed catalogue (nothing is
written to the catalogue or to notebooks/), executed into build/executed/, and its
outputs and declared convergence are printed, so a lesson can be tried from a terminal.
"""

from __future__ import annotations

from collections.abc import Callable

from tools import build, convergence
from tools.outputs import transcript
from tools.paths import LOCALES, Project, UnknownName
from tools.sources import load


def run(project: Project, lesson_key: str, locale: str, out: Callable[[str], None] = print) -> int:
    from tools.execute import ExecutionFailed, execute  # papermill is slow to import

    if locale not in LOCALES:
        raise UnknownName(f"unknown locale {locale!r}; choose one of {', '.join(LOCALES)}")
    lesson = project.find_lesson(lesson_key)
    sources = load(project, lesson)
    notebook = build.render(sources.template, lesson, locale, sources.catalog(locale))
    target = project.executed(lesson, locale)
    try:
        result = execute(notebook, target, project.kernel_cwd(locale))
    except ExecutionFailed as error:
        if error.partial is not None:
            out(transcript(error.partial))
        out(f"\n{lesson.slug} ({locale}) failed: {error}")
        return 1
    out(transcript(result))
    problems = convergence.check(result)
    for problem in problems:
        out(f"convergence: {problem}")
    out(f"\nwrote {project.relative(target)}" + ("" if problems else "; convergence OK"))
    return 1 if problems else 0
