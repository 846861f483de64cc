"""Printed text in code cells: the literal labels a lesson passes to `print(...)`.

`print(f"round {r} loss {value:.4f}")` shows an English sentence in the output, so the
text between the quotes is a message (msgctxt `printed text`) like a comment. Only a
string or f-string that is itself an argument of a `print` call counts: dict keys,
other calls' arguments, `description=` and names stay code. The message is the source
text between the quotes, `{placeholders}` exactly as written; the translation replaces
that text only, keeping the prefix (`f`, `r`) and the quotes, so the code around it is
the same in every language. Found with `ast` (positions) and `tokenize` (one literal,
not an implicit concatenation); a cell that does not parse has no printed text.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

#: msgctxt of printed-text messages
CONTEXT = "printed text"

_LITERAL = re.compile(
    r"(?P<prefix>[rRuUfF]{0,2})(?P<quote>'''|\"\"\"|'|\")(?P<body>.*)(?P=quote)", re.S
)
#: what a placeholder's number looks like in output ({x:.3f}, {x:.1e}, {x:.1%})
NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|nan|inf"


@dataclass(frozen=True)
class Printed:
    """One literal passed to print: where its text is and how it is quoted."""

    #: 0-based line and character column where the text (after the quote) starts
    line: int
    column: int
    #: 0-based line and column just after the text (before the closing quote)
    end_line: int
    end_column: int
    prefix: str
    quote: str
    text: str

    @property
    def is_fstring(self) -> bool:
        return "f" in self.prefix.lower()


def find_printed(source: str) -> list[Printed]:
    """Every translatable literal printed by a code cell, in source order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    lines = source.split("\n")
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id != "print":
            continue
        for argument in node.args:
            literal = _literal(argument, lines)
            if literal is not None and _has_words(literal):
                found.append(literal)
    return sorted(found, key=lambda p: (p.line, p.column))


def _literal(node: ast.expr, lines: list[str]) -> Printed | None:
    is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
    if not (is_text or isinstance(node, ast.JoinedStr)) or node.end_lineno is None:
        return None
    line, end_line = node.lineno - 1, node.end_lineno - 1
    column = _characters(lines[line], node.col_offset)
    end_column = _characters(lines[end_line], node.end_col_offset or 0)
    if line == end_line:
        span = lines[line][column:end_column]
    else:
        span = "\n".join(
            [lines[line][column:], *lines[line + 1 : end_line], lines[end_line][:end_column]]
        )
    match = _LITERAL.fullmatch(span)
    if match is None or not _single_token(span):
        return None
    prefix, quote, text = match["prefix"], match["quote"], match["body"]
    start = column + len(prefix) + len(quote)
    return Printed(line, start, end_line, end_column - len(quote), prefix, quote, text)


def _characters(line: str, byte_offset: int) -> int:
    """ast counts columns in UTF-8 bytes; strings are indexed by character."""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def _single_token(span: str) -> bool:
    """One literal, not `"a" "b"` (implicit concatenation has no single text to translate)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(span).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    starts = {tokenize.STRING, getattr(tokenize, "FSTRING_START", tokenize.STRING)}
    return sum(token.type in starts for token in tokens) == 1


def _has_words(printed: Printed) -> bool:
    return any(char.isalpha() for char in literal_text(printed.text, printed.is_fstring))


def placeholders(text: str) -> list[str]:
    """The `{…}` fields of an f-string's source text, as written (`{{` is a brace)."""
    return [piece for piece, is_field in pieces(text) if is_field]


def pieces(text: str) -> list[tuple[str, bool]]:
    """The text cut into literal runs and `{…}` fields: (piece, is_field)."""
    found: list[tuple[str, bool]] = []
    literal, index = "", 0
    while index < len(text):
        char = text[index]
        if text.startswith(("{{", "}}"), index):
            literal += text[index : index + 2]
            index += 2
        elif char == "{":
            depth, end = 0, index
            while end < len(text):
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                if depth == 0:
                    break
                end += 1
            if literal:
                found.append((literal, False))
            found.append((text[index : end + 1], True))
            literal, index = "", end + 1
        else:
            literal += char
            index += 1
    if literal:
        found.append((literal, False))
    return found


def literal_text(text: str, fstring: bool = True) -> str:
    """The words of a printed text, its fields left out."""
    if not fstring:
        return text
    return "".join(piece for piece, is_field in pieces(text) if not is_field)


def as_code(text: str) -> str:
    """The text with each field in backticks, so prose checks treat it as code."""
    return "".join(f"`{piece}`" if is_field else piece for piece, is_field in pieces(text))


def render(source: str, translate: Callable[[str], str | None]) -> str:
    """The cell with each printed text replaced by its translation (None keeps it)."""
    lines = source.split("\n")
    # from the last to the first, so earlier positions stay valid
    for printed in reversed(find_printed(source)):
        translation = translate(printed.text)
        if translation is None:
            continue
        head = lines[printed.line][: printed.column]
        tail = lines[printed.end_line][printed.end_column :]
        lines[printed.line : printed.end_line + 1] = (head + translation + tail).split("\n")
    return "\n".join(lines)


def problems(msgid: str, msgstr: str, prefix: str = "f", quote: str = '"') -> list[str]:
    """What the translation breaks: the fields (the code inside the text) and the quoting."""
    found = []
    missing = Counter(placeholders(msgid)) - Counter(placeholders(msgstr))
    extra = Counter(placeholders(msgstr)) - Counter(placeholders(msgid))
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(sorted(missing.elements())))
        if extra:
            parts.append("not in the English " + ", ".join(sorted(extra.elements())))
        found.append("printed text must keep its {placeholders} exactly: " + "; ".join(parts))
    if not _fits(msgstr, prefix, quote):
        found.append(f"the translation does not fit between the quotes {quote}…{quote}")
    if "\n" in msgstr and len(quote) == 1:
        found.append("printed text's translation must be one line")
    return found


def _fits(msgstr: str, prefix: str, quote: str) -> bool:
    """The translation, put between the quotes, is still that one literal."""
    code = f"print({prefix}{quote}{msgstr}{quote})"
    try:
        statement = ast.parse(code).body[0]
    except SyntaxError:
        return False
    call = statement.value if isinstance(statement, ast.Expr) else None
    if not isinstance(call, ast.Call) or len(call.args) != 1 or call.keywords:
        return False
    literal = _literal(call.args[0], code.split("\n"))
    return literal is not None and literal.text == msgstr


def output_pattern(text: str, field: str | None = None, group: str = NUMBER) -> str:
    """A regex for the line a text prints: `field` (the field as written) becomes the one
    group, other fields match anything on the line."""
    parts = []
    for piece, is_field in pieces(text):
        if not is_field:
            parts.append(_escape(piece))
        elif piece == field:
            parts.append(f"({group})")
        else:
            parts.append(".*?")
    return "".join(parts)


def untranslate(output: str, pairs: list[tuple[str, str]]) -> str:
    """`output` with each printed translation turned back into its English, the fields'
    values kept: so two languages' outputs can be compared. Longer texts go first, so
    that a label is not taken for the start of a longer one."""
    longest = sorted(pairs, key=lambda pair: -len(literal_text(pair[1])))
    for msgid, msgstr in longest:
        output = _back(msgstr).sub(functools.partial(_english, msgid=msgid), output)
    return output


def _group_name(field: str) -> str:
    return "f" + "".join(f"{ord(char):x}" for char in field)


def _back(msgstr: str) -> re.Pattern[str]:
    """A regex for the line `msgstr` prints, one named group per field."""
    parts, seen = [], set()
    for piece, is_field in pieces(msgstr):
        if not is_field:
            parts.append(_escape(piece))
        elif piece in seen:
            parts.append(f"(?P={_group_name(piece)})")
        else:
            seen.add(piece)
            parts.append(f"(?P<{_group_name(piece)}>[^\\n]*?)")
    return re.compile("".join(parts) + r"(?=\s|$)")


def _english(match: re.Match[str], msgid: str) -> str:
    values = match.groupdict()
    return "".join(
        values.get(_group_name(piece), piece) if is_field else _plain(piece)
        for piece, is_field in pieces(msgid)
    )


def _escape(piece: str) -> str:
    """A literal run as a regex that still reads as the text (spaces left as they are)."""
    return re.escape(_plain(piece)).replace("\\ ", " ")


def _plain(piece: str) -> str:
    return piece.replace("{{", "{").replace("}}", "}")
