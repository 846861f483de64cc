"""i18n-check: is every lesson translated, well-formed, and committed as built?

Fast on purpose (nothing is executed), so it runs before the slow tests. Each problem
is one line starting with the file (and line) to open, like a compiler's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import PoFileError

from tools import catalog as catalogs
from tools import comments, compare, convergence, glossary, printed, readme, structure, ui
from tools.build import render
from tools.messages import Message as TemplateMessage
from tools.paths import LOCALES, TARGET_LOCALES, Lesson, Project
from tools.sources import Sources, load


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    messages: int = 0
    notebooks: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"i18n-check: OK ({self.messages} messages, {self.notebooks} notebooks)"
        return f"i18n-check: FAILED ({len(self.problems)} problems)"


def excerpt(msgid: str, length: int = 60) -> str:
    """The first characters of a message on one line, as problems quote it."""
    flat = " ".join(msgid.split())
    return flat if len(flat) <= length else flat[:length] + "…"


def check_project(project: Project, lessons: list[Lesson] | None = None) -> Report:
    report = Report()
    terms: dict[str, list[glossary.Term]] = {}
    for locale in TARGET_LOCALES:
        try:
            terms[locale] = glossary.load(project.glossary(locale))
        except ValueError as error:
            report.problems.append(str(error))
            terms[locale] = []
    for lesson in project.lessons() if lessons is None else lessons:
        sources = load(project, lesson)
        report.messages += len(sources.messages)
        report.problems += _check_convergence_specs(sources)
        catalogues: dict[str, Catalog | None] = {}
        for locale in TARGET_LOCALES:
            catalogues[locale] = _check_catalog(sources, locale, terms[locale], report.problems)
        for locale in LOCALES:
            report.notebooks += 1
            report.problems += _check_notebook(sources, locale, catalogues.get(locale))
    for locale in TARGET_LOCALES:
        for domain in ui.DOMAINS:
            count, problems = ui.check(project, locale, terms[locale], domain)
            report.messages += count
            report.problems += problems
        count, problems = readme.check(project, locale, terms[locale])
        report.messages += count
        report.problems += problems
    return report


def _check_convergence_specs(sources: Sources) -> list[str]:
    found = []
    for index, cell in enumerate(sources.template.cells):
        spec = cell.metadata.get(convergence.KEY)
        if spec is not None:
            earlier = [c.source for c in sources.template.cells[:index] if c.cell_type == "code"]
            problems = convergence.validate(spec) + convergence.source_problems(
                spec, cell.source, earlier
            )
            found += [f"{sources.template_path}: cell {index}: {problem}" for problem in problems]
    return found


def _check_catalog(
    sources: Sources, locale: str, terms: list[glossary.Term], problems: list[str]
) -> Catalog | None:
    """Append the catalogue's problems; return it for the notebook check."""
    path = sources.project.catalog(sources.lesson, locale)
    where = sources.project.relative(path)
    if not path.exists():
        problems.append(f"{where}: missing ({len(sources.messages)} messages untranslated)")
        return None
    try:
        catalog = catalogs.read(path)
    except PoFileError as error:
        problems.append(f"{where}: cannot be read: {error}")
        return None
    published: list[tuple[str, str | None]] = []
    for message in sources.messages:
        entry = catalog.get(message.msgid, context=message.context)
        origin = _origin(where, entry, sources.template_path, message.line)
        quoted = repr(excerpt(message.msgid))
        state = catalogs.status(catalog, message)
        string = catalogs.string_of(entry)
        is_printed = message.context == printed.CONTEXT
        # printed labels are output, not prose: no gloss is owed in them (as widget labels)
        shown = string if state == "translated" and not is_printed else None
        published.append((message.msgid, shown))
        untranslated = catalogs.untranslated_problem(state, entry)
        if untranslated is not None:
            problems.append(f"{origin}: {untranslated}: {quoted}")
            continue
        if is_printed:
            msgid, string = printed.as_code(message.msgid), printed.as_code(string)
            kind = _printed_kind(sources, message)
            for problem in printed.problems(message.msgid, catalogs.string_of(entry), *kind):
                problems.append(f"{origin}: {problem}: {quoted}")
        else:
            msgid = message.msgid
            is_comment = message.context == comments.CONTEXT
            for problem in structure.problems(msgid, string, comment=is_comment):
                problems.append(f"{origin}: {problem}: {quoted}")
        for term_problem in glossary.problems(terms, msgid, string):
            problems.append(f"{origin}: {term_problem}: {quoted}")
    for index, term_problem in glossary.first_use_problems(terms, published):
        message = sources.messages[index]
        entry = catalog.get(message.msgid, context=message.context)
        origin = _origin(where, entry, sources.template_path, message.line)
        problems.append(f"{origin}: {term_problem}: {excerpt(message.msgid)!r}")
    wanted = {message.key for message in sources.messages}
    for entry in catalog:
        if entry.id and (entry.id, entry.context) not in wanted:
            problems.append(
                f"{where}:{entry.lineno}: not in the template any more (run `make translate`):"
                f" {excerpt(catalogs.id_of(entry))!r}"
            )
    return catalog


def _printed_kind(sources: Sources, message: TemplateMessage) -> tuple[str, str]:
    """(prefix, quote) of a printed text where it first occurs, to check its translation."""
    cell = sources.template.cells[message.cell]
    for text in printed.find_printed(cell.source):
        if text.text == message.msgid:
            return text.prefix, text.quote
    return "f", '"'


def _origin(po: str, entry: Message | None, template: str, line: int) -> str:
    """`po:line: template:line`: where to fix it, and where the English is."""
    at = f"{po}:{entry.lineno}" if entry is not None and entry.lineno else po
    return f"{at}: {template}:{line}"


def _check_notebook(sources: Sources, locale: str, catalog: Catalog | None) -> list[str]:
    path = sources.project.notebook(sources.lesson, locale)
    where = sources.project.relative(path)
    if not path.exists():
        return [f"{where}: missing; run `make translate`"]
    committed = nbformat.read(path, as_version=4)
    expected = render(sources.template, sources.lesson, locale, catalog)
    found = [
        f"{where}: stale, {difference}; run `make translate`"
        for difference in compare.differences(expected, committed)
    ]
    unexecuted = compare.unexecuted(committed)
    if unexecuted:
        cells = ", ".join(str(index) for index in unexecuted[:10])
        found.append(f"{where}: not executed (code cells {cells}); run `make translate`")
    unsaved = compare.unsaved_widgets(committed)
    if unsaved:
        cells = ", ".join(str(index) for index in unsaved[:10])
        found.append(
            f"{where}: widgets of code cells {cells} have no saved state; run `make translate`"
        )
    return found
