"""Split a markdown cell into paragraphs, the unit a translator sees.

Paragraphs are separated by blank lines, so a list or a table without blank lines inside
stays one message. A fenced block (```` ``` ```` or `~~~`) is kept whole and never
translated, even without blank lines around it. A paragraph with no letter at all
(e.g. a `---` rule) or that is only an HTML comment is left as it is, too.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})")
_HTML_COMMENT = re.compile(r"^\s*<!--.*-->\s*$", re.DOTALL)


@dataclass(frozen=True)
class Block:
    """Consecutive lines of one cell: a paragraph, a fence, or a run of blank lines."""

    lines: tuple[str, ...]
    #: index of the first line within the cell's source
    start: int
    kind: str  # "text", "fence" or "blank"

    @property
    def indent(self) -> str:
        """Indentation common to every line, kept out of the message."""
        first = self.lines[0]
        return first[: len(first) - len(self._dedented.split("\n")[0])]

    @property
    def _dedented(self) -> str:
        return textwrap.dedent("\n".join(self.lines))

    @property
    def msgid(self) -> str | None:
        """The message a translator sees, or None for what is not translated."""
        if self.kind != "text":
            return None
        text = self._dedented
        if not any(char.isalpha() for char in text) or _HTML_COMMENT.match(text):
            return None
        return text


def split_blocks(source: str) -> list[Block]:
    """Cut a cell's source into blocks; joining their lines with "\\n" gives it back."""
    lines = source.split("\n")
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence:
            end = _fence_end(lines, index, fence["fence"])
            kind = "fence"
        else:
            kind = "text" if line.strip() else "blank"
            end = index + 1
            while end < len(lines) and _kind_of(lines[end]) == kind:
                end += 1
        blocks.append(Block(lines=tuple(lines[index:end]), start=index, kind=kind))
        index = end
    return blocks


def _kind_of(line: str) -> str:
    if _FENCE.match(line):
        return "fence"
    return "text" if line.strip() else "blank"


def _fence_end(lines: list[str], start: int, fence: str) -> int:
    """One past the closing fence: same character, at least as long; or the cell's end."""
    closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
    for index in range(start + 1, len(lines)):
        if closing.match(lines[index]):
            return index + 1
    return len(lines)


def render(source: str, translate: Callable[[str], str | None]) -> str:
    """The cell with each paragraph replaced by its translation (None keeps the original)."""
    parts = []
    for block in split_blocks(source):
        msgid = block.msgid
        translation = translate(msgid) if msgid is not None else None
        if translation is None:
            parts.append("\n".join(block.lines))
        else:
            parts.append(textwrap.indent(translation.strip("\n"), block.indent))
    return "\n".join(parts)
