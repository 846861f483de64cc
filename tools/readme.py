"""The README in other languages: README.md → `locales/<l>/LC_MESSAGES/README.po` → README.<l>.md.

The front door follows the lessons' rules, so a Hindi reader meets it in Hindi and it
never drifts from the English: `translate` merges README.md's messages into the
catalogue (new ones empty, changed ones fuzzy) and writes README.hi.md, falling back to
the English for what is not translated yet; `i18n-check` reports missing, fuzzy and
leftover messages, broken markdown, glossary drift, and a README.hi.md that is stale.

Messages are the lessons' paragraphs (tools/markdown.py), with two changes that keep a
growing README cheap to translate: each table row is its own message, so a new lesson
adds one row to translate instead of making the whole table fuzzy; and inside fenced
blocks, the comments of code (`# …` after code or on their own line) and each line of
an untyped block (the file layout) are messages too, since they are prose.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog

from tools import catalog as catalogs
from tools import glossary, markdown, structure
from tools.comments import CONTEXT as COMMENT
from tools.messages import Message
from tools.paths import Project

DOMAIN = "README"
SOURCE = "README.md"
#: msgctxt of a line of an untyped fenced block, translated as a whole line
LINE = "preformatted line"

_FENCE_INFO = re.compile(r"^\s*(?:`{3,}|~{3,})\s*(?P<info>\S*)")
#: a shell or Python comment in a code block: `# text` at the start or after a space
_CODE_COMMENT = re.compile(r"(?P<prefix>(?:^|\s)#+ )(?P<text>.*?)\s*$")

#: (msgid, msgctxt) → translation or None
Translate = Callable[[str, str | None], str | None]


@dataclass(frozen=True)
class Readme:
    """Where one language's README and its catalogue live."""

    project: Project
    locale: str

    @property
    def source(self) -> Path:
        return self.project.root / SOURCE

    @property
    def catalog_path(self) -> Path:
        return self.project.root / "locales" / self.locale / "LC_MESSAGES" / f"{DOMAIN}.po"

    @property
    def output(self) -> Path:
        return self.project.root / f"README.{self.locale}.md"


def _walk(text: str, translate: Translate) -> tuple[str, list[Message]]:
    """The README rendered through `translate`, and its messages with their lines."""
    parts: list[str] = []
    found: list[Message] = []

    def use(msgid: str, context: str | None, line: int) -> str | None:
        found.append(Message(msgid=msgid, context=context, line=line + 1, cell=0))
        return translate(msgid, context)

    for block in markdown.split_blocks(text):
        if block.kind == "fence":
            parts.append("\n".join(_fence(block, use)))
        elif block.kind == "text" and block.msgid and _is_table(block.lines):
            rows = []
            for offset, row in enumerate(block.lines):
                msgid = row.strip()
                letters = any(char.isalpha() for char in msgid)
                translation = use(msgid, None, block.start + offset) if letters else None
                rows.append(row if translation is None else translation.strip())
            parts.append("\n".join(rows))
        elif block.msgid is not None:
            translation = use(block.msgid, None, block.start)
            if translation is None:
                parts.append("\n".join(block.lines))
            else:
                parts.append(textwrap.indent(translation.strip("\n"), block.indent))
        else:
            parts.append("\n".join(block.lines))
    return "\n".join(parts), found


def _is_table(lines: tuple[str, ...]) -> bool:
    return all(line.lstrip().startswith("|") for line in lines)


def _fence(block: markdown.Block, use: Callable[[str, str | None, int], str | None]) -> list[str]:
    """A fenced block's lines with their prose translated: code comments, or untyped lines."""
    lines = list(block.lines)
    info = _FENCE_INFO.match(lines[0])
    untyped = info is not None and info["info"] in ("", "text")
    closed = len(lines) > 1 and _FENCE_INFO.match(lines[-1]) is not None
    inner = range(1, len(lines) - 1 if closed else len(lines))
    for index in inner:
        line, number = lines[index], block.start + index
        if untyped:
            if any(char.isalpha() for char in line):
                translation = use(line.strip(), LINE, number)
                if translation is not None:
                    indent = line[: len(line) - len(line.lstrip())]
                    lines[index] = indent + " ".join(translation.split("\n")).rstrip()
            continue
        match = _CODE_COMMENT.search(line)
        if match and any(char.isalpha() for char in match["text"]):
            translation = use(match["text"], COMMENT, number)
            if translation is not None:
                lines[index] = line[: match.start("text")] + " ".join(translation.split())
    return lines


def messages(readme: Readme) -> list[Message]:
    """Every message of README.md in document order (a repeated text appears twice)."""
    if not readme.source.exists():
        return []
    return _walk(readme.source.read_text(encoding="utf-8"), lambda _m, _c: None)[1]


def render(readme: Readme, catalog: Catalog | None) -> str:
    """README.<locale>.md: README.md with every translated message replaced."""
    text = readme.source.read_text(encoding="utf-8")
    return _walk(text, catalogs.lookup(catalog))[0]


def update(project: Project, locale: str) -> tuple[Catalog | None, list[Message], list[str]]:
    """Merge README.md into the catalogue, write README.<locale>.md.

    Returns the catalogue, the distinct messages, and the files written.
    """
    readme = Readme(project, locale)
    found = messages(readme)
    if not found:
        return None, [], []
    pot = catalogs.template_catalog(found, SOURCE)
    existing = (
        catalogs.read(readme.catalog_path)
        if readme.catalog_path.exists()
        else catalogs.new_catalog(locale, DOMAIN)
    )
    merged = catalogs.merge(pot, existing)
    written = []
    if catalogs.write(merged, readme.catalog_path):
        written.append(project.relative(readme.catalog_path))
    content = render(readme, merged)
    if not readme.output.exists() or readme.output.read_text(encoding="utf-8") != content:
        readme.output.write_text(content, encoding="utf-8")
        written.append(project.relative(readme.output))
    return merged, _unique(found), written


def _unique(found: list[Message]) -> list[Message]:
    seen: dict[tuple[str, str | None], Message] = {}
    for message in found:
        seen.setdefault(message.key, message)
    return list(seen.values())


def check(project: Project, locale: str, terms: list[glossary.Term]) -> tuple[int, list[str]]:
    """(number of messages, problems) of one language's README, as i18n-check reports them."""
    readme = Readme(project, locale)
    found = _unique(messages(readme))
    if not found:
        return 0, []
    where = project.relative(readme.catalog_path)
    if not readme.catalog_path.exists():
        return len(found), [f"{where}: missing ({len(found)} README messages untranslated)"]
    catalog = catalogs.read(readme.catalog_path)
    problems: list[str] = []
    published: list[tuple[str, str | None]] = []

    def origin(message: Message) -> str:
        entry = catalog.get(message.msgid, context=message.context)
        at = f"{where}:{entry.lineno}" if entry is not None and entry.lineno else where
        return f"{at}: {SOURCE}:{message.line}"

    for message in found:
        quoted = repr(_excerpt(message.msgid))
        state = catalogs.status(catalog, message)
        entry = catalog.get(message.msgid, context=message.context)
        string = catalogs.string_of(entry)  # "" when there is no entry
        published.append((message.msgid, string if state == "translated" else None))
        untranslated = catalogs.untranslated_problem(state)
        if untranslated is not None:
            problems.append(f"{origin(message)}: {untranslated}: {quoted}")
            continue
        one_line = message.context in (COMMENT, LINE)
        for problem in structure.problems(message.msgid, string, comment=one_line):
            problems.append(f"{origin(message)}: {problem}: {quoted}")
        for term_problem in glossary.problems(terms, message.msgid, string):
            problems.append(f"{origin(message)}: {term_problem}: {quoted}")
    for index, term_problem in glossary.lesson_problems(terms, published):
        problems.append(f"{origin(found[index])}: {term_problem}: {_excerpt(found[index].msgid)!r}")
    wanted = {message.key for message in found}
    for entry in catalog:
        if entry.id and (entry.id, entry.context) not in wanted:
            problems.append(
                f"{where}:{entry.lineno}: not in {SOURCE} any more (run `make translate`):"
                f" {_excerpt(catalogs.id_of(entry))!r}"
            )
    output = project.relative(readme.output)
    if not readme.output.exists():
        problems.append(f"{output}: missing; run `make translate`")
    elif readme.output.read_text(encoding="utf-8") != render(readme, catalog):
        problems.append(f"{output}: stale, differs from {SOURCE} and {where}; run `make translate`")
    return len(found), problems


def _excerpt(msgid: str, length: int = 60) -> str:
    flat = " ".join(msgid.split())
    return flat if len(flat) <= length else flat[:length] + "…"
