"""gettext catalogues through Babel: extract a template catalogue, merge it into a PO file.

Merging is `Catalog.update`, which fuzzy-matches changed messages and records the old
msgid as `previous_id` (written as `#| msgid`). Gaps of Babel patched here: `read_po`
does not read `#|` lines back (python-babel/babel#206), so a second merge would lose
them; an exact match drops a still-fuzzy message's previous_id; an obsolete message
whose text returns to the template is not revived. Dates in the header are kept as
they are in the file, so merging an unchanged template rewrites nothing.
"""

from __future__ import annotations

import datetime
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po, unescape, write_po

from tools.messages import Lookup
from tools.messages import Message as TemplateMessage

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
        # Babel flags any text containing "%" as python-format; ours are prose
        message.flags.discard("python-format")
        old = previous.get((message.id, message.context))
        if message.fuzzy and not message.previous_id and old:
            message.previous_id = old
    return existing


def render(catalog: Catalog) -> bytes:
    """The PO file's bytes: fixed width, document order, obsolete entries kept."""
    buffer = io.BytesIO()
    write_po(
        buffer,
        catalog,
        width=WIDTH,
        sort_output=False,
        ignore_obsolete=False,
        include_previous=True,
    )
    return buffer.getvalue()


def write(catalog: Catalog, path: Path) -> bool:
    """Write the catalogue if its content changed; True when the file was written."""
    content = render(catalog)
    if path.exists() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return True


def translation(catalog: Catalog | None, msgid: str, context: str | None) -> str | None:
    """The msgstr to publish: None when missing or fuzzy (the English is used instead)."""
    if catalog is None:
        return None
    message = catalog.get(msgid, context=context)
    if message is None or not message.string or message.fuzzy:
        return None
    return message.string


def lookup(catalog: Catalog | None) -> Lookup:
    return lambda msgid, context: translation(catalog, msgid, context)


@dataclass(frozen=True)
class Counts:
    """How far a catalogue is translated, for the status table."""

    translated: int = 0
    fuzzy: int = 0
    missing: int = 0


def status(catalog: Catalog | None, message: TemplateMessage) -> str:
    """The state of one template message: "translated", "fuzzy" or "missing"."""
    entry = catalog.get(message.msgid, context=message.context) if catalog else None
    if entry is None or not entry.string:
        return "missing"
    return "fuzzy" if entry.fuzzy else "translated"


def untranslated_problem(state: str) -> str | None:
    """What i18n-check says of a message in `state`, or None if it is translated."""
    if state == "missing":
        return "missing translation"
    if state == "fuzzy":
        return "fuzzy translation (review, then drop the flag)"
    return None


def counts(catalog: Catalog | None, messages: Iterable[TemplateMessage]) -> Counts:
    tally = {"translated": 0, "fuzzy": 0, "missing": 0}
    for message in messages:
        tally[status(catalog, message)] += 1
    return Counts(**tally)
