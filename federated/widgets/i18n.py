"""Which language the widgets speak, and where their Hindi labels come from.

A lesson's code cells are identical in every language (only `# comments` are
translated), so a lesson cannot hand a widget its labels. The language is chosen
as for the error messages (federated/language.py): `lang=` given to a widget, then
`federated.language.use(...)`, then the environment variable `FEDERATED_LANG` that the
project's kernels set, then English.

The labels are gettext messages in the widget code (`t.gettext("…")`). `make translate`
extracts them into `locales/<locale>/LC_MESSAGES/widgets.po`, which translators edit like
the lessons' catalogues and `make i18n-check` checks the same way, and copies the file
into the package (`federated/locales/`), so an installed package has its labels. At run
time the catalogue is read with Babel and compiled in memory into a standard `gettext`
translation. A missing or fuzzy translation shows the English label.
"""

from __future__ import annotations

import gettext
from pathlib import Path

from federated import language
from federated.language import LOCALES_DIR, SOURCE, VARIABLE

__all__ = ["DOMAIN", "LOCALES_DIR", "SOURCE", "VARIABLE", "Labels", "resolve", "split_label"]

#: The gettext domain: `locales/<locale>/LC_MESSAGES/widgets.po`.
DOMAIN = "widgets"


def catalogue_path(locale: str, locales_dir: Path = LOCALES_DIR) -> Path:
    return language.catalogue_path(locale, DOMAIN, locales_dir)


def available(locales_dir: Path = LOCALES_DIR) -> tuple[str, ...]:
    """English and every language that has a widgets catalogue."""
    return language.available(DOMAIN, locales_dir)


def resolve(lang: str | None = None, locales_dir: Path = LOCALES_DIR) -> str:
    """The language a new widget uses (see federated/language.py for the order)."""
    return language.resolve(lang, DOMAIN, locales_dir)


def translations(lang: str, locales_dir: Path = LOCALES_DIR) -> gettext.NullTranslations:
    """The labels of `lang`: its catalogue compiled in memory, or the English itself."""
    return language.translations(lang, DOMAIN, locales_dir)


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
