"""Which language the widgets speak, and where their Hindi labels come from.

A lesson's code cells are identical in every language (only `# comments` are
translated), so a lesson cannot hand a widget its labels. The language is chosen
explicitly, first match wins:

1. `lang=` given to a widget (for tests and for a learner who wants another language);
2. the environment variable `FEDERATED_LANG` (`hi`, `en`, also `hi_IN.UTF-8`), which the
   project's kernels set: a Hindi lesson names the `federated-hi` kernel;
3. English.

The labels are gettext messages in the widget code (`t.gettext("…")`). `make translate`
extracts them into `locales/<locale>/LC_MESSAGES/widgets.po`, which translators edit like
the lessons' catalogues and `make i18n-check` checks the same way, and copies the file
into the package (`federated/locales/`), so an installed package has its labels. At run
time the catalogue is read with Babel and compiled in memory into a standard `gettext`
translation. A missing or fuzzy translation shows the English label.
"""

from __future__ import annotations

import gettext
import io
import os
import warnings
from functools import lru_cache
from pathlib import Path

#: The environment variable that picks the widgets' language.
VARIABLE = "FEDERATED_LANG"
#: The language the labels are written in.
SOURCE = "en"
#: The gettext domain: `locales/<locale>/LC_MESSAGES/widgets.po`.
DOMAIN = "widgets"
#: The catalogues shipped with the package (copies of the checkout's locales/).
LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"


def catalogue_path(locale: str, locales_dir: Path = LOCALES_DIR) -> Path:
    return locales_dir / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def available(locales_dir: Path = LOCALES_DIR) -> tuple[str, ...]:
    """English and every language that has a widgets catalogue."""
    found = []
    if locales_dir.is_dir():
        found = sorted(
            p.name for p in locales_dir.iterdir() if catalogue_path(p.name, locales_dir).is_file()
        )
    return (SOURCE, *(name for name in found if name != SOURCE))


def _normalize(value: str) -> str:
    """`hi_IN.UTF-8` and `HI` both mean `hi`."""
    return value.strip().split(".")[0].split("_")[0].split("-")[0].lower()


def resolve(lang: str | None = None, locales_dir: Path = LOCALES_DIR) -> str:
    """The language a new widget uses (see the module docstring for the order)."""
    locales = available(locales_dir)
    for origin, value in (("lang", lang), (VARIABLE, os.environ.get(VARIABLE))):
        if value:
            wanted = _normalize(value)
            if wanted in locales:
                return wanted
            warnings.warn(
                f"{origin}={value!r}: the widgets have no {wanted!r} labels "
                f"(known: {', '.join(locales)}); using {SOURCE!r}",
                stacklevel=3,
            )
            return SOURCE
    return SOURCE  # no choice was made: never guessed from the folder the kernel runs in


def translations(lang: str, locales_dir: Path = LOCALES_DIR) -> gettext.NullTranslations:
    """The labels of `lang`: its catalogue compiled in memory, or the English itself."""
    if lang == SOURCE:
        return gettext.NullTranslations()
    path = catalogue_path(lang, locales_dir)
    return _compiled(path, path.stat().st_mtime_ns if path.exists() else 0)


@lru_cache(maxsize=8)
def _compiled(path: Path, _mtime: int) -> gettext.NullTranslations:
    """Read the PO file with Babel and compile it (fuzzy entries left out) for gettext.

    Cached per file version, so a translator who edits the catalogue sees the change in
    the next widget made, without restarting the kernel.
    """
    if not path.exists():
        warnings.warn(f"no widget catalogue at {path}; labels stay in English", stacklevel=4)
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo  # Babel is needed only for a translation
    from babel.messages.pofile import read_po

    with path.open("rb") as handle:
        catalog = read_po(handle)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


class Labels:
    """The translated labels for one widget: `labels("Loss per worker")`.

    The call is spelled `gettext` inside so that Babel's extractor finds every label:
    write `t.gettext("…")` with a literal string, never a variable.
    """

    def __init__(self, lang: str | None = None, locales_dir: Path = LOCALES_DIR) -> None:
        self.lang = resolve(lang, locales_dir)
        self._translations = translations(self.lang, locales_dir)

    def gettext(self, message: str) -> str:
        return self._translations.gettext(message)

    def __repr__(self) -> str:
        return f"Labels({self.lang!r})"


def split_label(t: Labels, key: str) -> str:
    """How a data split that a lesson names in code (`"iid"`) is shown to the learner."""
    known = {
        "iid": t.gettext("shuffled (IID)"),
        "non_iid": t.gettext("sorted by label (non-IID)"),
        "even": t.gettext("equal parts"),
        # TRANSLATORS: a data split where the first worker gets most of the rows
        "uneven": t.gettext("one owner has most"),
    }
    return known.get(key, key)
