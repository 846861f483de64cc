"""The Hindi glossary: one agreed word per English term, used the same way everywhere.

`locales/<locale>/glossary.tsv` has a header row and the columns english, hindi, avoid,
kind, gender, note (see tools/README.md). A term's *kind* decides how a teacher writes it:

* `hindi`: rendered by a real Hindi word (भार for weight). The first time a lesson uses it
  (outside headings), the English follows in parentheses once: `भार (weight)`.
* `loan`: the English word written in Devanagari (मॉडल). It is never glossed: the reader
  already sees the English sound. Its grammatical gender is recorded (m, f, or - for a
  word that is not a noun) so every lesson agrees: `एरर आती है`, never `एरर आता है`.
* `name`: a library or tool (PyTorch, scikit-learn); it stays in Latin script.

Every check returns `Problem`s naming their rule, so a failing check says which rule a
message broke. Words are compared after NFC normalization, and "whole word" means
Devanagari-aware boundaries (a vowel sign is part of a word, unlike in `re`'s `\\b`).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tools.structure import code_spans, without_code

KINDS = ("hindi", "loan", "name")
GENDERS = ("m", "f", "-")
COLUMNS = ("english", "hindi", "avoid", "kind", "gender", "note")

#: a letter, a vowel sign, a nukta or a digit of any script: inside a word
_WORD = r"(?:[^\W_]|[\u0900-\u0963\u0966-\u097f])"
_START = rf"(?<!{_WORD})(?<!{_WORD}-)"
_END = rf"(?!{_WORD})(?!-{_WORD})"
#: endings a Hindi noun or adjective takes (plural, oblique), so an avoided variant
#: is still found inflected while a longer, different word (दौरान for दौर) is not
_INFLECTION = "(?:ों|ें|ो|े|ी|ियों|ियाँ|ियां|ाएँ|ाओं|ा)?"
#: an English gloss: Latin words in parentheses right after a Devanagari word
_GLOSS = re.compile(
    r"(?P<before>[\u0900-\u0963\u0966-\u097f]+[^\s()]*)\s*"
    r"\((?P<latin>[A-Za-z][A-Za-z0-9 .'’\-]*)\)"
)
#: four Latin words in a row, outside code, links and names, are an English sentence left over
_ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'’\-]*(?:[ ,;:]+[A-Za-z][A-Za-z'’\-]*){3,}")
_URL = re.compile(r"(?:https?|ftp)://\S+")
#: a markdown link; its text kept as it is in English (a title in the README's table) is no prose
_LINK = re.compile(r"\[[^\]]*\]\([^)]*\)")
#: words that show a following noun's gender: masculine form → feminine form
_AGREEING = {
    "का": "की",
    "नया": "नई",
    "पहला": "पहली",
    "दूसरा": "दूसरी",
    "अपना": "अपनी",
    "पूरा": "पूरी",
    "छोटा": "छोटी",
    "बड़ा": "बड़ी",
    "अगला": "अगली",
    "पिछला": "पिछली",
    "वाला": "वाली",
    "सारा": "सारी",
    "इसका": "इसकी",
    "उसका": "उसकी",
}
_MASCULINE = set(_AGREEING)
_FEMININE = set(_AGREEING.values())


def normalize(text: str) -> str:
    """NFC, single spaces: `फ़` typed as one code point or as फ + nukta compares equal."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def is_heading(msgid: str) -> bool:
    """A markdown heading (a lesson's title is one): never the place for a gloss."""
    return bool(re.match(r"#{1,6}(?:\s|$)", msgid.lstrip()))


@dataclass(frozen=True)
class Problem:
    """One broken rule in one message."""

    rule: str
    text: str

    def __str__(self) -> str:
        return f"glossary: {self.text} [rule {self.rule}]"


@dataclass(frozen=True)
class Term:
    english: str
    hindi: str
    avoid: tuple[str, ...] = ()
    kind: str = "hindi"
    gender: str = ""
    note: str = ""

    @property
    def pattern(self) -> re.Pattern[str]:
        """The English term as whole words (a hyphenated word is one); plural `s` allowed."""
        words = r"\s+".join(re.escape(word) for word in self.english.split())
        flags = 0 if self.kind == "name" else re.IGNORECASE
        # a path component (notebooks/) is no use of the term
        return re.compile(rf"(?<![\w\-/]){words}(?:s|es)?(?![\w/])", flags)

    def used_in(self, english_text: str) -> bool:
        """Whether the English text uses the term in prose (not only in `code`)."""
        return bool(self.pattern.search(without_code(english_text)))

    def names(self, latin: str) -> bool:
        """Whether a gloss's Latin text is this term (or a longer term ending in it)."""
        ends = [match.end() for match in self.pattern.finditer(latin.strip())]
        return bool(ends) and ends[-1] == len(latin.strip())

    def avoided_in(self, hindi_text: str) -> list[str]:
        """The variants to avoid that the Hindi uses as whole words (inflected or not)."""
        return [
            variant
            for variant in self.avoid
            if re.search(rf"{_START}{re.escape(variant)}{_INFLECTION}{_END}", hindi_text)
        ]


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
            terms.append(_term(path, number, [cell.strip() for cell in row]))
    return terms


def _term(path: Path, number: int, row: list[str]) -> Term:
    where = f"{path}:{number}"
    row = row + [""] * (len(COLUMNS) - len(row))
    english, hindi, avoid, kind, gender, note = row[: len(COLUMNS)]
    if not english or not hindi:
        raise ValueError(f"{where}: need english and hindi columns")
    kind = kind or "hindi"
    if kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "loan" and gender not in GENDERS:
        raise ValueError(f"{where}: a loanword needs its gender: m, f, or - when it is not a noun")
    if kind == "name" and not re.fullmatch(r"[\x20-\x7e]+", hindi):
        raise ValueError(f"{where}: a library or tool name stays in Latin script: {hindi!r}")
    return Term(
        english=english,
        hindi=normalize(hindi),
        avoid=tuple(normalize(v) for v in avoid.split("|") if v.strip()),
        kind=kind,
        gender=gender,
        note=note,
    )


def used_terms(terms: Iterable[Term], english_text: str) -> list[Term]:
    """Terms the English uses, the longest first; a longer term hides the shorter in it.

    "differential privacy" is its own term, so it does not also count as "privacy".
    """
    prose = without_code(english_text)
    found = []
    for term in sorted(terms, key=lambda t: -len(t.english)):
        if term.pattern.search(prose):
            found.append(term)
            prose = term.pattern.sub(lambda m: " " * len(m.group(0)), prose)
    return found


def problems(terms: Iterable[Term], msgid: str, msgstr: str) -> list[Problem]:
    """Everything one translated message can break on its own (not the per-lesson rules)."""
    terms = list(terms)
    hindi = normalize(msgstr)
    found: list[Problem] = []
    used = used_terms(terms, kept_english(msgid, msgstr))
    longer_hindi = sorted((t.hindi for t in used), key=len, reverse=True)
    for term in used:
        if term.hindi not in hindi:
            rule = "name-in-latin" if term.kind == "name" else "term"
            found.append(Problem(rule, f"{term.english!r} must be translated as {term.hindi!r}"))
        # a variant inside a longer term's Hindi is part of that term, not drift
        rest = hindi
        for other in longer_hindi:
            if other != term.hindi and term.hindi not in other:
                rest = rest.replace(other, " ")
        for variant in term.avoided_in(rest):
            found.append(
                Problem(
                    "variant",
                    f"{variant!r} is to be avoided; write {term.hindi!r} for {term.english!r}",
                )
            )
    found += gloss_problems(terms, msgid, msgstr)
    found += gender_problems(terms, msgstr)
    found += english_problems(terms, msgstr)
    return found


def _code_marked(text: str) -> str:
    """The text with each inline code span replaced by one mark, so `x` (y) is no gloss."""
    for span in code_spans(text):
        text = text.replace(span, "\x00", 1)
    return text


def kept_english(msgid: str, msgstr: str) -> str:
    """The English without the links the translation keeps word for word (titles of the
    English lessons in the README's table), which are no prose to translate."""
    return _LINK.sub(lambda link: " " if link.group(0) in msgstr else link.group(0), msgid)


def glosses(msgstr: str) -> list[tuple[str, str]]:
    """(Hindi word, English in parentheses) of each gloss, outside inline code."""
    prose = _code_marked(normalize(msgstr))
    return [(gloss["before"], gloss["latin"].strip()) for gloss in _GLOSS.finditer(prose)]


def glossed_term(terms: Iterable[Term], latin: str) -> Term | None:
    """The glossary term a gloss gives, the longest that matches all of it."""
    matching = [term for term in terms if term.pattern.fullmatch(latin.strip())]
    return max(matching, key=lambda t: len(t.english), default=None)


def gloss_problems(terms: Iterable[Term], msgid: str, msgstr: str) -> list[Problem]:
    """A gloss belongs after a Hindi word, outside headings, and only for a glossary term."""
    terms = list(terms)
    found = []
    for before, latin in glosses(msgstr):
        shown = f"'{before} ({latin})'"
        if is_heading(msgid):
            found.append(
                Problem("gloss-in-heading", f"{shown}: no English gloss in a title or heading")
            )
            continue
        term = glossed_term(terms, latin)
        if term is None:
            found.append(
                Problem(
                    "gloss-unknown",
                    f"{shown}: {latin!r} is not in the glossary; add it (kind hindi) if the"
                    " Hindi is a real Hindi word, or drop the parentheses",
                )
            )
        elif term.kind == "loan":
            found.append(
                Problem(
                    "gloss-on-loanword",
                    f"{shown}: {term.hindi!r} is the English word in Devanagari; drop the gloss",
                )
            )
    return found


def gender_problems(terms: Iterable[Term], msgstr: str) -> list[Problem]:
    """A loanword's gender, as the glossary records it, shown by the word before it."""
    hindi = normalize(msgstr)
    found = []
    for term in terms:
        if term.kind != "loan" or term.gender not in ("m", "f"):
            continue
        wrong = _FEMININE if term.gender == "m" else _MASCULINE
        pattern = rf"{_START}(\S+) {re.escape(term.hindi)}{_INFLECTION}{_END}"
        for match in re.finditer(pattern, hindi):
            if match.group(1) in wrong:
                gender = "masculine" if term.gender == "m" else "feminine"
                found.append(
                    Problem("gender", f"{term.hindi!r} is {gender}: not '{match.group(0)}'")
                )
    return found


def english_problems(terms: Iterable[Term], msgstr: str) -> list[Problem]:
    """An English sentence left in the Hindi (code, links, glosses and names aside)."""
    text = _URL.sub(" ", _LINK.sub(" ", without_code(msgstr)))
    text = _GLOSS.sub(lambda m: m["before"], text)
    for term in terms:
        if term.kind == "name":
            text = text.replace(term.hindi, " ")
    return [
        Problem("english-left", f"untranslated English: {run.group(0)!r}")
        for run in _ENGLISH_RUN.finditer(text)
    ]


def lesson_problems(
    terms: Iterable[Term], messages: Iterable[tuple[str, str | None]]
) -> list[tuple[int, Problem]]:
    """(index, problem) for the rules that span a lesson, messages in notebook order.

    A `hindi` term's first use outside headings carries its gloss, and no term is glossed
    twice. A message without a published translation (None) is skipped: it is reported
    anyway, and its English needs no gloss.
    """
    terms = list(terms)
    introduced: dict[str, int] = {}
    found: list[tuple[int, Problem]] = []
    for index, (msgid, msgstr) in enumerate(messages):
        if not msgstr:
            continue
        for _before, latin in glosses(msgstr):
            term = glossed_term(terms, latin)
            if term is None or term.kind != "hindi" or is_heading(msgid):
                continue  # reported by gloss_problems
            given = [t for t in terms if t.kind == "hindi" and t.names(latin)]
            if term.english in introduced:
                found.append(
                    (
                        index,
                        Problem(
                            "second-gloss",
                            f"{term.english!r} is glossed a second time in this lesson"
                            f" (first in message {introduced[term.english] + 1}); once is enough",
                        ),
                    )
                )
            for other in given:
                introduced.setdefault(other.english, index)
        if is_heading(msgid):
            continue
        for term in used_terms(terms, kept_english(msgid, msgstr)):
            if term.kind == "hindi" and term.english not in introduced:
                found.append(
                    (
                        index,
                        Problem(
                            "first-gloss",
                            f"first use of {term.english!r} in this lesson must read"
                            f" '{term.hindi} ({term.english})'",
                        ),
                    )
                )
                introduced[term.english] = index
    return found


#: the name i18n-check has called this by since the first-use rule was its only one
first_use_problems = lesson_problems
