"""Full-line comments in code cells: the only part of code that gets translated.

A comment is found with `tokenize`, so a `#` inside a string is left alone; cells that
do not tokenize (IPython magics, unfinished code) fall back to a line-by-line match.
Only the text after `# ` changes; indentation, code and trailing comments never do.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass

#: msgctxt of code-comment messages, so they never merge with a paragraph of the same text
CONTEXT = "code comment"

_LINE = re.compile(r"^(?P<prefix>[ \t]*#+[ \t]*)(?P<text>.*?)[ \t]*$")


@dataclass(frozen=True)
class Comment:
    """One full-line comment."""

    #: index of the line within the cell's source
    index: int
    #: indentation and the `# ` marker, kept in every language
    prefix: str
    text: str


def find_comments(source: str) -> list[Comment]:
    """Every translatable full-line comment of a code cell, in order."""
    lines = source.split("\n")
    found = []
    for index in _comment_lines(source, lines):
        match = _LINE.match(lines[index])
        if not match or lines[index].lstrip().startswith("#!"):
            continue
        if not any(char.isalpha() for char in match["text"]):
            continue
        found.append(Comment(index=index, prefix=match["prefix"], text=match["text"]))
    return found


def _comment_lines(source: str, lines: list[str]) -> list[int]:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return [i for i, line in enumerate(lines) if line.lstrip().startswith("#")]
    return [
        token.start[0] - 1
        for token in tokens
        if token.type == tokenize.COMMENT and not token.line[: token.start[1]].strip()
    ]


def render(source: str, translate: Callable[[str], str | None]) -> str:
    """The cell with each comment's text replaced by its translation (None keeps it)."""
    lines = source.split("\n")
    for comment in find_comments(source):
        translation = translate(comment.text)
        if translation is not None:
            lines[comment.index] = comment.prefix + " ".join(translation.split())
    return "\n".join(lines)


def mask(source: str) -> str:
    """The code with comment texts blanked: equal masks mean the same program."""
    return render(source, lambda _text: "")
