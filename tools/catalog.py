"""gettext catalogues through Babel: extract a template catalogue, merge it into a PO file.

Merging is `Catalog.update`, which fuzzy-matches changed messages and records the old
msgid as `previous_id` (written as `#| msgid`). Gaps of Babel patched here: `write_po`
wraps a `#| msgid` like prose, breaking its quoted string across lines, which GNU
`msgfmt --check` and editors built on gettext reject, so those lines are written again
the way gettext writes a msgid; `read_po` does not read `#|` lines back
(python-babel/babel#206), so a second merge would lose them; an exact match drops a
still-fuzzy message's previous_id; an obsolete message whose text returns to the
template is not revived. Dates in the header are kept as
they are in the file, so merging an unchanged template rewrites nothing.
"""

from __future__ import annotations

import datetime
import difflib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import normalize, read_po, unescape, write_po

from tools.messages import Lookup
from tools.messages import Message as TemplateMessage
from tools.printed import CONTEXT as PRINTED

PROJECT = "federated"
VERSION = "lessons"
#: line width of written catalogues; fixed so that a rewrite never rewraps
WIDTH = 76
#: one quoted PO string, escapes included
_PO_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')

_HEADER_COMMENT = """\
# {language} translation of the federated lesson {domain}.
# Translate the msgstr lines only; `make translate` rebuilds the notebooks.
# A fuzzy message changed in English: check it, then remove the flag."""


def template_catalog(messages: Iterable[TemplateMessage], template_path: str) -> Catalog:
    """The POT of one lesson: every message with all the lines it occurs on."""
    pot = Catalog(project=PROJECT, version=VERSION, fuzzy=False)
    for message in messages:
        pot.add(message.msgid, locations=[(template_path, message.line)], context=message.context)
    return pot


def new_catalog(locale: str, domain: str) -> Catalog:
    """An empty catalogue for a language that has none yet."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    language = Locale.parse(locale).english_name or locale
    return Catalog(
        locale=locale,
        domain=domain,
        project=PROJECT,
        version=VERSION,
        header_comment=_HEADER_COMMENT.format(language=language, domain=domain),
        creation_date=now,
        language_team=language,
        fuzzy=False,
    )


def read(path: Path) -> Catalog:
    """A catalogue from disk, with the previous msgids of fuzzy messages restored."""
    with path.open("rb") as handle:
        catalog = read_po(handle, abort_invalid=True)
    for message in [*catalog, *catalog.obsolete.values()]:
        _restore_previous_id(message)
    return catalog


def _restore_previous_id(message: Message) -> None:
    """read_po keeps `#| msgid "…"` lines as translator comments "| msgid …"; undo that.

    write_po wraps the previous msgid like prose, even inside its quoted strings, so the
    lines are joined back with a space before the quoted strings are read with Babel's
    `unescape` (a run of spaces at a wrap point comes back as one space).
    """
    previous = [c[1:].strip() for c in message.user_comments if c.startswith("|")]
    if not previous:
        return
    message.user_comments = [c for c in message.user_comments if not c.startswith("|")]
    ids = []
    for part in re.split(r"(?:^|\s)msgid(?:_plural)?\s", " ".join(previous))[1:]:
        ids.append("".join(unescape(literal) for literal in _PO_STRING.findall(part)))
    message.previous_id = ids


def merge(pot: Catalog, existing: Catalog) -> Catalog:
    """`existing` updated to the template (in place): new messages empty, changed ones fuzzy."""
    for key, message in list(existing.obsolete.items()):
        back = pot.get(message.id, context=message.context) is not None
        if back and existing.get(message.id, context=message.context) is None:
            existing[message.id] = existing.obsolete.pop(key)
    previous = {(m.id, m.context): m.previous_id for m in existing if m.id}
    existing.update(pot, update_creation_date=False)
    for message in existing:
        old = previous.get((message.id, message.context))
        if message.fuzzy and not message.previous_id and old:
            message.previous_id = old
    return existing


def render(catalog: Catalog) -> bytes:
    """The PO file's bytes: fixed width, document order, obsolete entries kept."""
    for message in catalog:
        # Babel flags any text containing "%" as python-format; ours are prose
        message.flags.discard("python-format")
        if message.context == PRINTED:
            # an f-string's fields are code, not str.format fields msgfmt could check
            message.flags.discard("python-brace-format")
    buffer = io.BytesIO()
    write_po(
        buffer,
        catalog,
        width=WIDTH,
        sort_output=False,
        ignore_obsolete=False,
        include_previous=True,
    )
    return _rewrite_previous(buffer.getvalue().decode("utf-8"), catalog).encode("utf-8")


def _rewrite_previous(text: str, catalog: Catalog) -> str:
    """Each run of `#|` lines written again from its message's previous msgid, wrapped
    inside the quotes as gettext does: `#| msgid ""` then `#| "…"` lines."""
    previous = [message.previous_id for message in catalog if message.previous_id]
    lines, out, runs = text.split("\n"), [], iter(previous)
    index = 0
    while index < len(lines):
        if not lines[index].startswith("#| "):
            out.append(lines[index])
            index += 1
            continue
        while index < len(lines) and lines[index].startswith("#| "):
            index += 1
        ids = next(runs)
        names = ("msgid", "msgid_plural")
        for name, value in zip(names, ids):
            out.append(f"#| {name} {normalize(value, prefix='#| ', width=WIDTH)}")
    return "\n".join(out)


def write(catalog: Catalog, path: Path) -> bool:
    """Write the catalogue if its content changed; True when the file was written."""
    content = render(catalog)
    if path.exists() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return True


def _singular(value: object) -> str:
    """Babel types a msgid/msgstr as a string or, for plurals (which we never write), a
    sequence of them; the first form is the message."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return value[0]
    return ""


def string_of(entry: Message | None) -> str:
    """An entry's msgstr as a string ("" when there is no entry)."""
    return _singular(entry.string) if entry is not None else ""


def id_of(entry: Message) -> str:
    """An entry's msgid as a string."""
    return _singular(entry.id)


def translation(catalog: Catalog | None, msgid: str, context: str | None) -> str | None:
    """The msgstr to publish: None when missing or fuzzy (the English is used instead)."""
    if catalog is None:
        return None
    message = catalog.get(msgid, context=context)
    if message is None or not message.string or message.fuzzy:
        return None
    return string_of(message)


def lookup(catalog: Catalog | None) -> Lookup:
    return lambda msgid, context: translation(catalog, msgid, context)


@dataclass(frozen=True)
class Counts:
    """How far a catalogue is translated, for the status table."""

    translated: int = 0
    fuzzy: int = 0
    missing: int = 0


class Keyed(Protocol):
    """What names a message in a catalogue: a lesson's message, or a widget label."""

    @property
    def msgid(self) -> str: ...

    @property
    def context(self) -> str | None: ...


def status(catalog: Catalog | None, message: Keyed) -> str:
    """The state of one template message: "translated", "fuzzy" or "missing"."""
    entry = catalog.get(message.msgid, context=message.context) if catalog else None
    if entry is None or not entry.string:
        return "missing"
    return "fuzzy" if entry.fuzzy else "translated"


def untranslated_problem(state: str, entry: Message | None = None) -> str | None:
    """What i18n-check says of a message in `state`, or None if it is translated.

    For a fuzzy message whose old English is known, it names the words that changed.
    """
    if state == "missing":
        return "missing translation"
    if state == "fuzzy":
        changed = changed_words(entry.previous_id, entry.id) if entry is not None else ""
        detail = f"; the English changed: {changed}" if changed else ""
        return f"fuzzy translation (review, then drop the flag){detail}"
    return None


def changed_words(previous: object, current: object) -> str:
    """`'old' → 'new'` for each changed run of words (at most three), as a translator reads
    them: what to look for in the translation and what it must now say."""
    old = previous[0] if isinstance(previous, (list, tuple)) and previous else previous
    new = current[0] if isinstance(current, (list, tuple)) else current
    if not isinstance(old, str) or not isinstance(new, str) or old == new:
        return ""
    before, after = old.split(), new.split()
    parts = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed, added = " ".join(before[a1:a2]), " ".join(after[b1:b2])
        if tag == "delete":
            parts.append(f"removed {removed!r}")
        elif tag == "insert":
            parts.append(f"added {added!r}")
        else:
            parts.append(f"{removed!r} → {added!r}")
    shown = parts[:3] + ([f"and {len(parts) - 3} more changes"] if len(parts) > 3 else [])
    return ", ".join(shown) if shown else "only spacing"


def counts(catalog: Catalog | None, messages: Iterable[Keyed]) -> Counts:
    tally = {"translated": 0, "fuzzy": 0, "missing": 0}
    for message in messages:
        tally[status(catalog, message)] += 1
    return Counts(**tally)
