"""The Hindi glossary: one agreed word per English term, used the same way everywhere.

`locales/<locale>/glossary.tsv` has a header row and the columns english, hindi, avoid
(`|`-separated wrong variants, may be empty). Lines starting with `#` are comments.
A translated message whose English uses a term (outside inline code; a plural `s` is
allowed) must contain the Hindi term — as a substring, so inflected forms count — and
none of the variants to avoid. The first message of a notebook that uses a term must
also give the English in parentheses right after the Hindi: `वर्कर (worker)`.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tools.structure import without_code


def normalize(text: str) -> str:
    """NFC, single spaces: `फ़` typed as one code point or as फ + nukta compares equal."""
    return " ".join(unicodedata.normalize("NFC", text).split())


@dataclass(frozen=True)
class Term:
    english: str
    hindi: str
    avoid: tuple[str, ...] = ()

    @property
    def pattern(self) -> re.Pattern[str]:
        words = r"\s+".join(re.escape(word) for word in self.english.split())
        return re.compile(rf"\b{words}s?\b", re.IGNORECASE)

    def used_in(self, english_text: str) -> bool:
        """Whether the English text uses the term in prose (not only in `code`)."""
        return bool(self.pattern.search(without_code(english_text)))

    def introduced_in(self, hindi_text: str) -> bool:
        """Whether the Hindi text has `hindi… (english)`, inflection allowed.

        The parentheses may hold a longer term ending in this one, so that
        `सुरक्षित एकत्रीकरण (secure aggregation)` also introduces "aggregation".
        """
        english = r"\s+".join(re.escape(word) for word in self.english.split())
        hindi = re.escape(normalize(self.hindi))
        pattern = rf"{hindi}\S*\s*\((?:[^()]*\s)?\s*{english}s?\s*\)"
        return bool(re.search(pattern, normalize(hindi_text), re.IGNORECASE))


def load(path: Path) -> list[Term]:
    """The glossary's terms; an absent file means no glossary checks."""
    if not path.exists():
        return []
    terms = []
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        for number, row in enumerate(rows, start=1):
            if not row or row[0].startswith("#") or (number == 1 and row[0] == "english"):
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise ValueError(f"{path}:{number}: need english and hindi columns")
            avoid = row[2] if len(row) > 2 else ""
            terms.append(
                Term(
                    english=row[0].strip(),
                    hindi=normalize(row[1]),
                    avoid=tuple(normalize(v) for v in avoid.split("|") if v.strip()),
                )
            )
    return terms


def problems(terms: Iterable[Term], msgid: str, msgstr: str) -> list[str]:
    """Glossary drift in one translated message."""
    found = []
    hindi = normalize(msgstr)
    for term in terms:
        if not term.used_in(msgid):
            continue
        if term.hindi not in hindi:
            found.append(f"glossary: {term.english!r} must be translated as {term.hindi!r}")
        for variant in term.avoid:
            if variant in hindi:
                found.append(
                    f"glossary: {variant!r} is to be avoided; write {term.hindi!r}"
                    f" for {term.english!r}"
                )
    return found


def first_use_problems(
    terms: Iterable[Term], messages: Iterable[tuple[str, str | None]]
) -> list[tuple[int, str]]:
    """(index, problem) for each term whose first use, in notebook order, lacks `(english)`.

    `messages` are (msgid, msgstr or None) in the order the notebook shows them; a term
    first used in an untranslated message is skipped (that message is reported anyway).
    """
    ordered = list(messages)
    found = []
    for term in terms:
        for index, (msgid, msgstr) in enumerate(ordered):
            if not term.used_in(msgid):
                continue
            if msgstr and not term.introduced_in(msgstr):
                found.append(
                    (
                        index,
                        f"glossary: first use of {term.english!r} in this notebook must read"
                        f" '{term.hindi} ({term.english})'",
                    )
                )
            break
    return sorted(found)
