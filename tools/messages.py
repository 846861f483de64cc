"""The translatable messages of a template, and a cell's source in another language."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from nbformat import NotebookNode

from tools import comments, markdown, printed
from tools.template import Template

#: (msgid, msgctxt) → the translation to use, or None to keep the English
Lookup = Callable[[str, str | None], str | None]


@dataclass(frozen=True)
class Message:
    """One occurrence of a message in a template."""

    msgid: str
    #: None for markdown paragraphs, `comments.CONTEXT` for code comments,
    #: `printed.CONTEXT` for the text a code cell prints
    context: str | None
    #: 1-based line of the template where the message starts
    line: int
    #: index of the cell it is in
    cell: int

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.msgid, self.context)


def extract(template: Template) -> list[Message]:
    """Every message occurrence, in document order (a repeated text appears twice)."""
    cursor = template.body_start
    found = []
    line = cursor
    for cell_index, first_line, msgid, context in _occurrences(template):
        if first_line is not None:
            line = _find_line(template.lines, first_line, cursor)
            cursor = line + 1
        found.append(Message(msgid=msgid, context=context, line=line + 1, cell=cell_index))
    return found


def unique(messages: list[Message]) -> list[Message]:
    """First occurrence of each (msgid, context), in document order."""
    seen: dict[tuple[str, str | None], Message] = {}
    for message in messages:
        seen.setdefault(message.key, message)
    return list(seen.values())


def _occurrences(template: Template) -> Iterator[tuple[int, str | None, str, str | None]]:
    for index, cell in enumerate(template.cells):
        if cell.cell_type == "markdown":
            for block in markdown.split_blocks(cell.source):
                if block.msgid is not None:
                    yield index, block.lines[0], block.msgid, None
        elif cell.cell_type == "code":
            lines = cell.source.split("\n")
            found = [
                (comment.index, lines[comment.index], comment.text, comments.CONTEXT)
                for comment in comments.find_comments(cell.source)
            ]
            found += [
                (text.line, lines[text.line], text.text, printed.CONTEXT)
                for text in printed.find_printed(cell.source)
            ]
            # document order, as `_find_line` walks the template forward; a second
            # text printed on the same line is on the line found for the first
            previous = None
            for line, first_line, msgid, context in sorted(found, key=lambda item: item[0]):
                yield index, (None if line == previous else first_line), msgid, context
                previous = line


def _find_line(lines: tuple[str, ...], wanted: str, cursor: int) -> int:
    """Index of the next template line equal to `wanted` (messages come in file order)."""
    wanted = wanted.rstrip()
    for index in range(cursor, len(lines)):
        if lines[index].rstrip() == wanted:
            return index
    return min(cursor, max(len(lines) - 1, 0))


def translated_source(cell: NotebookNode, lookup: Lookup) -> str:
    """The cell's source with every message it has replaced through `lookup`."""
    if cell.cell_type == "markdown":
        return markdown.render(cell.source, lambda text: lookup(text, None))
    if cell.cell_type == "code":
        source = printed.render(cell.source, lambda text: lookup(text, printed.CONTEXT))
        return comments.render(source, lambda text: lookup(text, comments.CONTEXT))
    return cell.source
