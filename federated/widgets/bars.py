"""`progress`: a `tqdm.auto` bar over a long loop, labelled in the learner's language.

    for r in progress(range(1, rounds + 1)):
        ...

`tqdm.auto` draws a widget in a notebook and text in a terminal. Its timings change on
every run, so the lesson tooling turns bars off with `TQDM_DISABLE=1` while it executes
notebooks: the committed notebooks have no bar, a learner running a lesson sees one.
tqdm's notebook bar ignores that variable (it passes `disable=False` on its own), so it
is read here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from federated.widgets.i18n import Labels


def disabled() -> bool:
    """Whether `TQDM_DISABLE` asks for no bars (any value but empty, 0 or false)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")


def progress(iterable: Iterable[Any], total: int | None = None, lang: str | None = None) -> Any:
    """`iterable`, wrapped in a tqdm bar that counts rounds."""
    from tqdm.auto import tqdm

    t = Labels(lang)
    return tqdm(
        iterable,
        total=total,
        desc=t.gettext("rounds"),
        unit=t.gettext("round"),
        disable=disabled(),
    )
