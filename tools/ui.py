"""The package's own messages: the widgets' labels and the error messages, each a catalogue.

`locales/<locale>/LC_MESSAGES/widgets.po` holds the widgets' labels, `errors.po` the
error messages (`tr("…")` anywhere in `federated/`, see federated/language.py); both are
handled the same way, described here for the widgets.

A widget in a lesson cannot take its labels from the lesson (code cells are the same in
every language), so `federated.widgets` picks its language itself and looks its labels
up in this catalogue at run time. Its messages are the string literals of the
`t.gettext("…")` calls in `federated/widgets/*.py`, found by Babel's Python extractor; a
`# TRANSLATORS:` comment just above a call reaches the translator as a note.

`translate` merges them into each language's catalogue as it does a lesson's (new ones
empty, changed ones fuzzy) and copies the catalogue into the package
(`federated/locales/<locale>/LC_MESSAGES/widgets.po`, package data, so an installed
wheel speaks Hindi; translators still edit only locales/), and `i18n-check` reports a
missing, fuzzy or leftover label, a `{placeholder}` the translation lost or added, and
glossary drift. The glossary's "first use in parentheses" rule is for lesson prose and
does not apply to labels or errors; in the errors catalogue a term is glossed at most once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file

from tools import catalog as catalogs
from tools import glossary
from tools.paths import Project

COMMENT_TAGS = ("TRANSLATORS:",)
_PLACEHOLDER = re.compile(r"\{[a-z_][a-z0-9_]*\}")


@dataclass(frozen=True)
class Domain:
    """One catalogue of the package's messages: which calls in which files make it."""

    name: str
    keywords: dict[str, None]
    #: what its messages are, for problem lines ("widget labels")
    what: str
    files: Callable[[Project], list[Path]]
    #: where the messages come from, for problem lines ("the widget code")
    code: str
    #: whether a glossary term may be glossed only once in the whole catalogue
    one_gloss: bool = False

    def catalog(self, project: Project, locale: str) -> Path:
        return project.root / "locales" / locale / "LC_MESSAGES" / f"{self.name}.po"


def _widget_files(project: Project) -> list[Path]:
    return sorted(project.ui_dir.glob("*.py")) if project.ui_dir.is_dir() else []


def _package_files(project: Project) -> list[Path]:
    package = project.root / "federated"
    return sorted(package.rglob("*.py")) if package.is_dir() else []


WIDGETS = Domain("widgets", {"gettext": None}, "widget labels", _widget_files, "the widget code")
#: `tr("…")` in any module of the package (federated/language.py)
ERRORS = Domain(
    "errors", {"tr": None}, "error messages", _package_files, "the package's code", one_gloss=True
)
DOMAINS = (WIDGETS, ERRORS)
DOMAIN = WIDGETS.name
KEYWORDS = WIDGETS.keywords


@dataclass(frozen=True)
class Label:
    """One label as the code has it (`context` is always None; `status` expects it)."""

    msgid: str
    path: str
    line: int
    notes: tuple[str, ...] = ()
    context: None = None


def sources(project: Project, domain: Domain = WIDGETS) -> list[Path]:
    return domain.files(project)


def labels(project: Project, domain: Domain = WIDGETS) -> list[Label]:
    """Every message occurrence, file by file, in source order."""
    found = []
    for path in sources(project, domain):
        for line, msgid, notes, _context in extract_from_file(
            "python",
            str(path),
            keywords=domain.keywords,
            comment_tags=COMMENT_TAGS,
            strip_comment_tags=True,
        ):
            if isinstance(msgid, str) and msgid:
                found.append(Label(msgid, project.relative(path), line, tuple(notes)))
    return found


def unique(found: list[Label]) -> list[Label]:
    seen: set[str] = set()
    first = []
    for label in found:
        if label.msgid not in seen:
            seen.add(label.msgid)
            first.append(label)
    return first


def pot(found: list[Label]) -> Catalog:
    template = Catalog(project=catalogs.PROJECT, version=catalogs.VERSION, fuzzy=False)
    for label in found:
        existing = template.get(label.msgid)
        if existing is not None:
            existing.locations.append((label.path, label.line))
            continue
        template.add(
            label.msgid, locations=[(label.path, label.line)], auto_comments=list(label.notes)
        )
    return template


def update(project: Project, locale: str, domain: Domain = WIDGETS) -> tuple[Catalog | None, bool]:
    """Merge the code's messages into the catalogue; (catalogue, whether it was written)."""
    found = labels(project, domain)
    path = domain.catalog(project, locale)
    if not found and not path.exists():
        return None, False
    existing = catalogs.read(path) if path.exists() else catalogs.new_catalog(locale, domain.name)
    merged = catalogs.merge(pot(found), existing)
    written = catalogs.write(merged, path)
    return merged, ship(project, locale, domain) or written


def ship(project: Project, locale: str, domain: Domain = WIDGETS) -> bool:
    """Copy the catalogue into the package if the copy differs; True when it was written."""
    source = domain.catalog(project, locale)
    shipped = project.shipped_catalog(domain.name, locale)
    if not source.exists() or (shipped.exists() and shipped.read_bytes() == source.read_bytes()):
        return False
    shipped.parent.mkdir(parents=True, exist_ok=True)
    shipped.write_bytes(source.read_bytes())
    return True


def shipping_problems(project: Project, locale: str, domain: Domain = WIDGETS) -> list[str]:
    """The package's copy must be the catalogue translators edit, byte for byte."""
    source = domain.catalog(project, locale)
    shipped = project.shipped_catalog(domain.name, locale)
    if not source.exists() or (shipped.exists() and shipped.read_bytes() == source.read_bytes()):
        return []
    state = "differs from" if shipped.exists() else "is missing, the copy of"
    return [
        f"{project.relative(shipped)}: {state} {project.relative(source)}"
        " (the package ships it); run `make translate`"
    ]


def placeholder_problems(msgid: str, msgstr: str) -> list[str]:
    """`{name}` fields are filled in by the code: the translation must keep each one."""
    want, have = Counter(_PLACEHOLDER.findall(msgid)), Counter(_PLACEHOLDER.findall(msgstr))
    if want == have:
        return []
    return [f"placeholders differ: {sorted(want.elements())} vs {sorted(have.elements())}"]


def check(
    project: Project, locale: str, terms: list[glossary.Term], domain: Domain = WIDGETS
) -> tuple[int, list[str]]:
    """(number of messages, problems) for one language's catalogue of `domain`."""
    found = unique(labels(project, domain))
    path = domain.catalog(project, locale)
    where = project.relative(path)
    if not found:
        return 0, []
    if not path.exists():
        return len(found), [f"{where}: missing ({len(found)} {domain.what} untranslated)"]
    catalog = catalogs.read(path)
    problems = shipping_problems(project, locale, domain)
    published: list[tuple[str, str | None]] = []
    for label in found:
        entry = catalog.get(label.msgid)
        at = f"{where}:{entry.lineno}" if entry is not None and entry.lineno else where
        origin = f"{at}: {label.path}:{label.line}"
        quoted = repr(label.msgid if len(label.msgid) <= 60 else label.msgid[:60] + "…")
        state = catalogs.status(catalog, label)
        untranslated = catalogs.untranslated_problem(state, entry)
        if untranslated is not None:
            problems.append(f"{origin}: {untranslated}: {quoted}")
            continue
        string = catalogs.string_of(entry)
        published.append((label.msgid, string))
        for problem in placeholder_problems(label.msgid, string):
            problems.append(f"{origin}: {problem}: {quoted}")
        # a `{worker}` field is filled in by the code: no use of the term "worker"
        prose = _PLACEHOLDER.sub("\x00", label.msgid)
        for term_problem in glossary.problems(terms, prose, string):
            problems.append(f"{origin}: {term_problem}: {quoted}")
    if domain.one_gloss:
        for index, term_problem in glossary.lesson_problems(terms, published):
            if term_problem.rule == "second-gloss":
                problems.append(f"{where}: {term_problem}: {published[index][0][:60]!r}")
    wanted = {label.msgid for label in found}
    for entry in catalog:
        if entry.id and entry.id not in wanted:
            problems.append(
                f"{where}:{entry.lineno}: not in {domain.code} any more (run `make translate`):"
                f" {entry.id!r}"
            )
    return len(found), problems
