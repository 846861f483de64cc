"""Which language the learner reads, and the Hindi catalogues the package ships.

Both the widgets' labels and the error messages are gettext messages, each family in its
own catalogue (a gettext *domain*: `widgets`, `errors`). The language is chosen
explicitly, first match wins:

1. `lang=` given to a widget, or `federated.language.use("hi")` for everything after it;
2. the environment variable `FEDERATED_LANG` (`hi`, `en`, also `hi_IN.UTF-8`), which the
   project's kernels set: a Hindi lesson names the `federated-hi` kernel;
3. English.

An error decides its language when it is raised, so a Hindi kernel gets Hindi errors.
`make translate` extracts the messages into `locales/<locale>/LC_MESSAGES/<domain>.po`,
which translators edit, and copies each file into the package (`federated/locales/`), so
an installed package speaks Hindi. At run time a catalogue is read with Babel and
compiled in memory into a standard `gettext` translation; a missing or fuzzy
translation shows the English. This module imports neither torch nor ipywidgets.
"""

from __future__ import annotations

import gettext
import io
import os
import re
import warnings
from functools import lru_cache
from pathlib import Path

#: The environment variable that picks the language.
VARIABLE = "FEDERATED_LANG"
#: The language the messages are written in.
SOURCE = "en"
#: The catalogues shipped with the package (copies of the checkout's locales/).
LOCALES_DIR = Path(__file__).resolve().parent / "locales"
#: The gettext domain of the error messages.
ERRORS = "errors"
#: A `{name}` field of a message; the only thing `tr` fills in.
FIELD = re.compile(r"\{([a-z_][a-z0-9_]*)\}")

_chosen: str | None = None


def catalogue_path(locale: str, domain: str, locales_dir: Path = LOCALES_DIR) -> Path:
    return locales_dir / locale / "LC_MESSAGES" / f"{domain}.po"


def available(domain: str, locales_dir: Path = LOCALES_DIR) -> tuple[str, ...]:
    """English and every language that has a catalogue of `domain`."""
    found = []
    if locales_dir.is_dir():
        found = sorted(
            p.name
            for p in locales_dir.iterdir()
            if catalogue_path(p.name, domain, locales_dir).is_file()
        )
    return (SOURCE, *(name for name in found if name != SOURCE))


def normalize(value: str) -> str:
    """`hi_IN.UTF-8` and `HI` both mean `hi`."""
    return value.strip().split(".")[0].split("_")[0].split("-")[0].lower()


def use(lang: str | None) -> None:
    """Speak `lang` from now on in this process (None: back to `FEDERATED_LANG`)."""
    global _chosen
    _chosen = normalize(lang) if lang else None


def resolve(
    lang: str | None, domain: str, locales_dir: Path = LOCALES_DIR, *, warn: bool = True
) -> str:
    """The language to speak (see the module docstring for the order)."""
    locales = available(domain, locales_dir)
    choices = (("lang", lang), ("use", _chosen), (VARIABLE, os.environ.get(VARIABLE)))
    for origin, value in choices:
        if value:
            wanted = normalize(value)
            if wanted in locales:
                return wanted
            if warn:
                warnings.warn(
                    f"{origin}={value!r}: no {wanted!r} labels for the {domain}"
                    f" (known: {', '.join(locales)}); using {SOURCE!r}",
                    stacklevel=4,
                )
            return SOURCE
    return SOURCE  # no choice was made: never guessed from the folder the kernel runs in


def translations(
    lang: str, domain: str, locales_dir: Path = LOCALES_DIR
) -> gettext.NullTranslations:
    """The messages of `lang`: its catalogue compiled in memory, or the English itself."""
    if lang == SOURCE:
        return gettext.NullTranslations()
    path = catalogue_path(lang, domain, locales_dir)
    return _compiled(path, path.stat().st_mtime_ns if path.exists() else 0)


@lru_cache(maxsize=16)
def _compiled(path: Path, _mtime: int) -> gettext.NullTranslations:
    """Read the PO file with Babel and compile it (fuzzy entries left out) for gettext.

    Cached per file version, so a translator who edits the catalogue sees the change
    next time, without restarting the kernel.
    """
    if not path.exists():
        warnings.warn(f"no catalogue at {path}; messages stay in English", stacklevel=4)
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo  # Babel is needed only for a translation
    from babel.messages.pofile import read_po

    with path.open("rb") as handle:
        catalog = read_po(handle)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


class Text(str):
    """A translated message that remembers its English template and fields.

    A worker server sends these two (JSON, never a pickle) with an error, so the
    learner's side shows the error in the learner's language, not the server's.
    """

    msgid: str
    fields: dict[str, str]

    def __new__(cls, text: str, msgid: str, fields: dict[str, str]) -> Text:
        made = super().__new__(cls, text)
        made.msgid, made.fields = msgid, fields
        return made

    def __reduce__(self) -> tuple[type[Text], tuple[str, str, dict[str, str]]]:
        """Copied and pickled (an error sent between local processes) as itself."""
        return (Text, (str(self), self.msgid, self.fields))


def fill(template: str, fields: dict[str, str]) -> str:
    """`template` with each `{name}` replaced by its field; nothing else is interpreted
    (no attribute access, no format specs), so a template from the network is safe."""
    return FIELD.sub(lambda m: fields.get(m[1], m[0]), template)


def tr(msgid: str, lang: str | None = None, /, **fields: object) -> Text:
    """An error message in the learner's language: translate the template, then fill it.

    Write `tr("… {name} …", name=value)` with a literal template, never a formatted
    string, so that Babel finds it and one translation serves every value. A
    translation that lost a field falls back to the English.
    """
    values = {name: str(value) for name, value in fields.items()}
    chosen = resolve(lang, ERRORS, warn=False)
    template = translations(chosen, ERRORS).gettext(msgid)
    if sorted(FIELD.findall(template)) != sorted(FIELD.findall(msgid)):
        template = msgid
    return Text(fill(template, values), msgid, values)


#: How long a template or field from a worker server may be (a server's reply is untrusted).
WIRE_LIMIT = 4000


def to_wire(error: BaseException) -> dict[str, object]:
    """What a worker server sends besides an error's text so that the learner's side can
    translate it: the English template and its fields, plain JSON (empty if untranslatable)."""
    text = error.args[0] if error.args else None
    if not isinstance(text, Text):
        return {}
    return {"msgid": text.msgid[:WIRE_LIMIT], "fields": text.fields}


def from_wire(problem: dict[str, object]) -> str:
    """An error reported by a worker server, in the learner's language when the server sent
    its template (`to_wire`), else the server's own text."""
    msgid, fields = problem.get("msgid"), problem.get("fields")
    if (
        isinstance(msgid, str)
        and isinstance(fields, dict)
        and all(isinstance(k, str) and FIELD.fullmatch("{" + k + "}") for k in fields)
        and all(isinstance(v, str) and len(v) <= WIRE_LIMIT for v in fields.values())
    ):
        return tr(msgid[:WIRE_LIMIT], **fields)
    return str(problem.get("message"))
