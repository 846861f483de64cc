"""Markdown a translation must keep as it is, so the Hindi notebook renders like the English.

Compared between msgid and msgstr: the heading level, the list markers (with their
indentation), fences, inline code spans, URLs and link targets, and the shape of
table rows. Code spans and URLs are compared as multisets, because Hindi word order
may move them around. A code comment's translation must stay on one line.
"""

from __future__ import annotations

import re
from collections import Counter

_HEADING = re.compile(r"^(#{1,6})(?=\s|$)")
_LIST_MARKER = re.compile(r"^(?P<indent>[ \t]*)(?P<marker>[-*+]|\d+[.)])[ \t]")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_URL = re.compile(r"(?:https?|ftp)://[^\s<>()\[\]`\"']+")
_LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)")
# full stops a URL may be followed by: English, and the Devanagari danda
_TRAILING = ".,;:!?।॥"


def code_spans(text: str) -> list[str]:
    """The inline code spans of a text, backticks included."""
    return [match.group(0) for match in _CODE_SPAN.finditer(text)]


def without_code(text: str) -> str:
    """The text with its inline code spans removed."""
    return _CODE_SPAN.sub(" ", text)


def urls(text: str) -> list[str]:
    """Absolute URLs and markdown link targets (relative ones too), outside code spans."""
    prose = without_code(text)
    found = [url.rstrip(_TRAILING) for url in _URL.findall(prose)]
    found += [t for t in _LINK_TARGET.findall(prose) if not _URL.fullmatch(t.rstrip(_TRAILING))]
    return found


def _heading(text: str) -> str:
    match = _HEADING.match(text)
    return match.group(1) if match else ""


def _list_markers(text: str) -> list[tuple[int, str]]:
    markers = []
    for line in text.split("\n"):
        match = _LIST_MARKER.match(line)
        if match:
            marker = match["marker"]
            kind = marker if marker in "-*+" else "1" + marker[-1]
            markers.append((len(match["indent"].expandtabs(4)), kind))
    return markers


def _table_rows(text: str) -> list[int]:
    prose = without_code(text)
    return [line.count("|") for line in prose.split("\n") if line.lstrip().startswith("|")]


def problems(msgid: str, msgstr: str, comment: bool = False) -> list[str]:
    """What the translation broke; empty when its structure matches the English."""
    found = []
    if _heading(msgid) != _heading(msgstr):
        want = f"heading {_heading(msgid)!r}" if _heading(msgid) else "no heading"
        found.append(f"heading level changed: the English has {want}")
    if _list_markers(msgid) != _list_markers(msgstr):
        found.append("list markers differ from the English (count, kind or indentation)")
    if msgid.count("```") != msgstr.count("```") or msgid.count("~~~") != msgstr.count("~~~"):
        found.append("code fences differ from the English")
    missing = Counter(code_spans(msgid)) - Counter(code_spans(msgstr))
    extra = Counter(code_spans(msgstr)) - Counter(code_spans(msgid))
    if missing or extra:
        found.append(_difference("inline code", missing, extra))
    missing = Counter(urls(msgid)) - Counter(urls(msgstr))
    extra = Counter(urls(msgstr)) - Counter(urls(msgid))
    if missing or extra:
        found.append(_difference("URLs", missing, extra))
    if _table_rows(msgid) != _table_rows(msgstr):
        found.append("table rows or columns differ from the English")
    if comment and "\n" in msgstr.strip():
        found.append("a code comment's translation must be one line")
    return found


def _difference(what: str, missing: Counter, extra: Counter) -> str:
    parts = []
    if missing:
        parts.append("missing " + ", ".join(sorted(missing.elements())))
    if extra:
        parts.append("not in the English " + ", ".join(sorted(extra.elements())))
    return f"{what} must be kept exactly: " + "; ".join(parts)
