"""Everything one lesson is built from: its template, its messages, its catalogues."""

from __future__ import annotations

from dataclasses import dataclass

from babel.messages.catalog import Catalog

from tools import catalog as catalogs
from tools.messages import Message, extract, unique
from tools.paths import Lesson, Project
from tools.template import Template, read_template


@dataclass(frozen=True)
class Sources:
    project: Project
    lesson: Lesson
    template: Template
    #: every occurrence, in document order
    occurrences: tuple[Message, ...]

    @property
    def messages(self) -> list[Message]:
        """Each distinct message once, where it first occurs."""
        return unique(list(self.occurrences))

    @property
    def template_path(self) -> str:
        return self.project.relative(self.template.path)

    def pot(self) -> Catalog:
        return catalogs.template_catalog(self.occurrences, self.template_path)

    def catalog(self, locale: str) -> Catalog | None:
        """The committed catalogue of a language, or None when there is none yet."""
        path = self.project.catalog(self.lesson, locale)
        return catalogs.read(path) if path.exists() else None


def load(project: Project, lesson: Lesson) -> Sources:
    template = read_template(project.template(lesson))
    return Sources(project, lesson, template, tuple(extract(template)))
