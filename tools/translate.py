"""`translate`: bring catalogues and notebooks up to date with the templates.

For each lesson: extract the messages, merge them into every catalogue (creating a
missing one), build the notebook of every language, execute it if its code or what the
code depends on changed (tools/freshness.py; else the committed outputs are kept), and
write the result to notebooks/<locale>/ ready to commit, only if it differs. The
widgets' labels and the error messages are merged into their own catalogues the same
way (tools/ui.py). Ends
with a table of how much is translated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import nbformat
from babel.messages.catalog import Catalog

from tools import build, convergence, freshness, ui
from tools import catalog as catalogs
from tools.outputs import reuse_outputs, with_outputs
from tools.paths import LOCALES, SOURCE_LOCALE, TARGET_LOCALES, Lesson, Project
from tools.sources import Sources, load

Print = Callable[[str], None]


@dataclass(frozen=True)
class Row:
    notebook: str
    locale: str
    counts: catalogs.Counts
    outputs: str


def translate(
    project: Project,
    lessons: list[Lesson],
    execute: bool = True,
    out: Print = print,
    force: bool = False,
) -> int:
    """Run the whole pipeline; the exit status is 1 if a notebook failed to run or converge."""
    rows: list[Row] = []
    failed = False
    # The package's catalogues first: a Hindi notebook's digest covers its errors.po, whose
    # line references move whenever the package's code does.
    ui_rows = _update_ui_catalogues(project, out)
    for lesson in lessons:
        sources = load(project, lesson)
        catalogues = _update_catalogues(sources, out)
        for locale in LOCALES:
            catalogue = catalogues.get(locale)
            notebook = build.render(sources.template, lesson, locale, catalogue)
            if execute:
                state = _execute(sources, locale, notebook, out, force)
            else:
                state = _keep(sources, locale, notebook)
            failed = failed or state.startswith("FAILED")
            counts = (
                catalogs.Counts(translated=len(sources.messages))
                if locale == SOURCE_LOCALE
                else catalogs.counts(catalogue, sources.messages)
            )
            rows.append(Row(lesson.slug, locale, counts, state))
    rows += ui_rows
    rows += _update_readmes(project, out)
    out(table(rows))
    return 1 if failed else 0


def _update_catalogues(sources: Sources, out: Print) -> dict[str, Catalog]:
    pot = sources.pot()
    catalogues = {}
    for locale in TARGET_LOCALES:
        path = sources.project.catalog(sources.lesson, locale)
        existing = sources.catalog(locale) or catalogs.new_catalog(locale, sources.lesson.slug)
        catalogues[locale] = catalogs.merge(pot, existing)
        if catalogs.write(catalogues[locale], path):
            out(f"wrote {sources.project.relative(path)}")
    return catalogues


def _update_ui_catalogues(project: Project, out: Print) -> list[Row]:
    """Merge the widgets' labels and the error messages into each language's `widgets.po`
    and `errors.po`; one status row each."""
    rows = []
    for domain in ui.DOMAINS:
        labels = ui.unique(ui.labels(project, domain))
        for locale in TARGET_LOCALES:
            catalogue, written = ui.update(project, locale, domain)
            if catalogue is None:
                continue
            if written:
                out(f"wrote {project.relative(domain.catalog(project, locale))}")
            counts = catalogs.counts(catalogue, labels)
            shown = "(labels)" if domain is ui.WIDGETS else "(messages)"
            rows.append(Row(domain.name, locale, counts, shown))
    return rows


def _execute(
    sources: Sources, locale: str, notebook: nbformat.NotebookNode, out: Print, force: bool
) -> str:
    project, lesson = sources.project, sources.lesson
    digest = freshness.digest(project, notebook, locale)
    path = project.notebook(lesson, locale)
    if not force and path.exists():
        committed = nbformat.read(path, as_version=4)
        if freshness.recorded(committed) == digest and freshness.executed(committed):
            kept = freshness.record(with_outputs(notebook, committed), digest)
            build.write(kept, path)
            return "kept (code unchanged)"
    from tools.execute import ExecutionFailed, execute  # papermill is slow to import

    out(f"executing {lesson.slug} ({locale}) …")
    try:
        result = execute(notebook, project.executed(lesson, locale), project.kernel_cwd(locale))
    except ExecutionFailed as error:
        out(f"  {lesson.slug} ({locale}): {error}; the committed notebook is left as it was")
        return "FAILED: error"
    build.write(freshness.record(result, digest), path)
    problems = convergence.check(result)
    for problem in problems:
        out(f"  {lesson.slug} ({locale}): convergence: {problem}")
    return "FAILED: convergence" if problems else "executed"


def _keep(sources: Sources, locale: str, notebook: nbformat.NotebookNode) -> str:
    """Build only; keep the committed outputs when the code did not change."""
    path = sources.project.notebook(sources.lesson, locale)
    reused = None
    if path.exists():
        previous = nbformat.read(path, as_version=4)
        reused = reuse_outputs(notebook, previous)
        digest = freshness.digest(sources.project, notebook, locale)
        if reused is not None and freshness.recorded(previous) == digest:
            # the outputs are still what executing would give: say so, or the next
            # `translate` would execute this notebook again for nothing
            reused = freshness.record(reused, digest)
    build.write(reused or notebook, path)
    return "outputs kept" if reused is not None else "not executed"


def table(rows: list[Row]) -> str:
    """The status table printed at the end."""
    header = ("notebook", "lang", "translated", "fuzzy", "missing", "outputs")
    lines = [
        (
            row.notebook,
            row.locale,
            str(row.counts.translated),
            str(row.counts.fuzzy),
            str(row.counts.missing),
            row.outputs,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    numeric = {2, 3, 4}

    def fmt(line: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(header), *(fmt(line) for line in lines)])


def _update_readmes(project: Project, out: Print) -> list[Row]:
    """Merge README.md into each language's `README.po` and write README.<locale>.md."""
    from tools import readme

    rows = []
    for locale in TARGET_LOCALES:
        catalogue, found, written = readme.update(project, locale)
        for path in written:
            out(f"wrote {path}")
        if catalogue is not None:
            rows.append(Row(readme.DOMAIN, locale, catalogs.counts(catalogue, found), "(README)"))
    return rows
