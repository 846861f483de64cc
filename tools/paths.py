"""Where every file of a lesson lives, so no other module spells a path by hand."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: The language the templates are written in.
SOURCE_LOCALE = "en"
#: Languages that get a gettext catalogue and a translated notebook.
TARGET_LOCALES: tuple[str, ...] = ("hi",)
LOCALES: tuple[str, ...] = (SOURCE_LOCALE, *TARGET_LOCALES)

#: The repository this package was checked out in (tools/ sits at its top level).
DEFAULT_ROOT = Path(__file__).resolve().parent.parent

_TEMPLATE_NAME = re.compile(r"^(?P<number>\d{2})_[a-z0-9_]+$")


class UnknownName(LookupError):
    """A lesson or a locale named on the command line does not exist."""


@dataclass(frozen=True)
class Lesson:
    """One lesson, named by its template file `NN_slug.md`."""

    number: str
    slug: str


@dataclass(frozen=True)
class Project:
    """The file layout of one checkout (the real one, or a test's tmp_path)."""

    root: Path

    @property
    def templates_dir(self) -> Path:
        return self.root / "notebooks" / "templates"

    def template(self, lesson: Lesson) -> Path:
        return self.templates_dir / f"{lesson.slug}.md"

    def catalog(self, lesson: Lesson, locale: str) -> Path:
        return self.root / "locales" / locale / "LC_MESSAGES" / f"{lesson.slug}.po"

    @property
    def ui_dir(self) -> Path:
        """The widget code whose `t.gettext("…")` labels make the `widgets` catalogue."""
        return self.root / "federated" / "widgets"

    def ui_catalog(self, locale: str) -> Path:
        """The widgets' labels in one language (see tools/ui.py)."""
        return self.root / "locales" / locale / "LC_MESSAGES" / "widgets.po"

    @property
    def shipped_dir(self) -> Path:
        """The run-time catalogues inside the package (a copy of the ones in locales/,
        kept in step by `translate` and checked by `i18n-check`), so an installed wheel
        has them."""
        return self.root / "federated" / "locales"

    def shipped_catalog(self, domain: str, locale: str) -> Path:
        return self.shipped_dir / locale / "LC_MESSAGES" / f"{domain}.po"

    def glossary(self, locale: str) -> Path:
        return self.root / "locales" / locale / "glossary.tsv"

    def notebook(self, lesson: Lesson, locale: str) -> Path:
        """The committed, executed notebook."""
        return self.root / "notebooks" / locale / f"{lesson.slug}.ipynb"

    def executed(self, lesson: Lesson, locale: str) -> Path:
        """Scratch output of `run` and the tests; never committed (build/ is ignored)."""
        return self.root / "build" / "executed" / locale / f"{lesson.slug}.ipynb"

    def kernel_cwd(self, locale: str) -> Path:
        """Working directory of the kernel: the committed notebook's folder, as under nbval."""
        return self.root / "notebooks" / locale

    def relative(self, path: Path) -> str:
        """A path as written in catalogues and reports: relative to the root, with `/`."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    def lessons(self) -> list[Lesson]:
        """Every lesson that has a template, in lesson order."""
        if not self.templates_dir.is_dir():
            return []
        found = []
        for path in sorted(self.templates_dir.glob("*.md")):
            match = _TEMPLATE_NAME.match(path.stem)
            if match:
                found.append(Lesson(number=match["number"], slug=path.stem))
        return found

    def find_lesson(self, key: str) -> Lesson:
        """Accept `02`, `2`, `02_intro_federated_learning` or the template's file name."""
        wanted = Path(key).name.removesuffix(".md").removesuffix(".ipynb")
        for lesson in self.lessons():
            if wanted in (lesson.slug, lesson.number) or (
                wanted.isdigit() and wanted.zfill(2) == lesson.number
            ):
                return lesson
        known = ", ".join(lesson.slug for lesson in self.lessons()) or "none"
        raise UnknownName(f"no lesson {key!r} in {self.templates_dir} (known: {known})")
