"""`AccuracyPlot`: test accuracy after each round, one line per run, drawn by matplotlib.

Devanagari needs a shaping engine and a Devanagari font, or its conjuncts break and
its vowel signs land on the wrong letter. matplotlib 3.11 lays text out with libraqm
(HarfBuzz), so the shaping is there; the font is looked for on this machine
(`devanagari_font`). When there is none, the figure keeps only its numbers and the
title, axis names and legend are written in HTML above it, where the browser shapes
them. Either way the widget's text/plain form is the same, so the notebooks' printed
outputs do not depend on the fonts of the machine that ran them.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from functools import lru_cache
from html import escape

import ipywidgets as widgets

from federated.widgets import chart
from federated.widgets.i18n import Labels, split_label
from federated.widgets.style import STYLE, mark

#: Devanagari families tried first, in this order (Linux, Windows, macOS)
KNOWN_FONTS = (
    "Noto Sans Devanagari",
    "Lohit Devanagari",
    "Nirmala UI",
    "Mangal",
    "Kohinoor Devanagari",
    "Devanagari Sangam MN",
)
#: languages whose labels matplotlib can draw with its bundled font alone
LATIN = ("en",)
#: the figure's size in inches, and pixels per inch: drawn at twice the size it is shown
WIDTH, HEIGHT, DPI = 7.2, 3.6, 160


def _font_manager():
    """matplotlib's font manager, imported without its one-off "building the font cache"
    notice, which would be a stray stderr output in the notebook that builds it."""
    logger = logging.getLogger("matplotlib.font_manager")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from matplotlib import font_manager
    finally:
        logger.setLevel(level)
    return font_manager


def _fontconfig_files() -> list[str]:
    """Devanagari fonts that fontconfig knows (installed after matplotlib's cache was made)."""
    if shutil.which("fc-list") is None:
        return []
    try:
        listing = subprocess.run(
            ["fc-list", ":lang=hi", "file"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    files = (line.strip().rstrip(":") for line in listing.splitlines())
    return sorted(f for f in files if f.lower().endswith((".ttf", ".otf")))


@lru_cache(maxsize=1)
def devanagari_font() -> str | None:
    """The family name of a Devanagari font matplotlib can use, or None."""
    font_manager = _font_manager()
    names = {entry.name for entry in font_manager.fontManager.ttflist}
    for family in KNOWN_FONTS:
        if family in names:
            return family
    for path in _fontconfig_files():
        try:
            font_manager.fontManager.addfont(path)
        except (OSError, RuntimeError, ValueError):
            continue
        return font_manager.FontProperties(fname=path).get_name()
    return None


def run_label(t: Labels, settings: Mapping[str, object]) -> str:
    """`lr 0.05 · 10 rounds · 3 workers · shuffled (IID)` for a try-it-yourself run."""
    parts = []
    if "learning_rate" in settings:
        rate = f"{settings['learning_rate']:g}"
        # TRANSLATORS: a run's settings in the plot's legend, joined by " · "
        parts.append(t.gettext("learning rate {value}").format(value=rate))
    if "rounds" in settings:
        parts.append(t.gettext("{n} rounds").format(n=settings["rounds"]))
    if "workers" in settings:
        parts.append(t.gettext("{n} workers").format(n=settings["workers"]))
    if "split" in settings:
        parts.append(split_label(t, str(settings["split"])))
    return " · ".join(parts)


class AccuracyPlot(widgets.VBox):
    """Accuracy per round of each named history: `AccuracyPlot({"iid": h1, "non_iid": h2})`.

    A name the widgets know (`iid`, `non_iid`, `even`, `uneven`) is shown translated; any
    other is shown as it is.
    """

    def __init__(
        self, histories: Mapping[str, Sequence[float]] | None = None, lang: str | None = None
    ) -> None:
        self.t = Labels(lang)
        self._histories: dict[str, list[float]] = {}
        self._caption = widgets.HTML()
        self._image = widgets.Image(format="png", width=str(round(WIDTH * 100)))
        super().__init__([self._caption, self._image])
        mark(self, "fl-accuracy")
        for name, history in (histories or {}).items():
            self._histories[name] = [float(a) for a in history]
        self._redraw()

    def add(self, label: str, history: Sequence[float]) -> None:
        """Another line; the legend shows `label` as it is (already translated)."""
        self._histories[label] = [float(a) for a in history]
        self._redraw()

    # ---- the numbers it draws -------------------------------------------------------------

    @property
    def series(self) -> dict[str, list[tuple[int, float]]]:
        """(round, accuracy) per line, keyed by the label the legend shows."""
        return {
            split_label(self.t, name): list(enumerate(history, start=1))
            for name, history in self._histories.items()
        }

    def labels(self) -> dict[str, str]:
        t = self.t
        return {
            "title": t.gettext("Test accuracy after each round"),
            "x": t.gettext("round"),
            "y": t.gettext("accuracy"),
        }

    @property
    def text_in_figure(self) -> bool:
        """Whether matplotlib draws the labels (else the HTML caption carries them)."""
        return self.t.lang in LATIN or devanagari_font() is not None

    # ---- drawing --------------------------------------------------------------------------

    def figure(self):
        """The matplotlib figure (not attached to pyplot, so nothing is shown twice)."""
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        _font_manager()
        families = ["DejaVu Sans"]
        devanagari = devanagari_font() if self.t.lang not in LATIN else None
        if devanagari is not None:
            families.append(devanagari)
        font = {"family": families}
        figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, layout="constrained")
        axes = figure.add_subplot()
        for index, (label, points) in enumerate(self.series.items()):
            rounds = [r for r, _ in points]
            values = [a for _, a in points]
            axes.plot(
                rounds, values, marker="o", markersize=3, color=chart.color(index), label=label
            )
        axes.set_ylim(0, 1.02)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, color="#eee")
        labels = self.labels()
        if self.text_in_figure:
            axes.set_title(labels["title"], fontdict=font)
            axes.set_xlabel(labels["x"], fontdict=font)
            axes.set_ylabel(labels["y"], fontdict=font)
            if self._histories:
                axes.legend(loc="lower right", prop=font)
        return figure

    def png(self) -> bytes:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        figure = self.figure()
        FigureCanvasAgg(figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()

    def _caption_html(self) -> str:
        if self.text_in_figure:
            return ""
        labels = self.labels()
        items = "".join(
            f'<span style="margin-right:1.2em"><span style="display:inline-block;width:1.6em;'
            f'height:3px;background:{chart.color(i)};vertical-align:middle;margin-right:.4em">'
            f"</span>{escape(label)}</span>"
            for i, label in enumerate(self.series)
        )
        axes = f"{escape(labels['x'])} → · {escape(labels['y'])} ↑"
        return (
            f'<div class="fl-caption" style="line-height:1.6"><b>{escape(labels["title"])}</b>'
            f"<br>{items}<br><small>{axes}</small></div>"
        )

    def _redraw(self) -> None:
        self._caption.value = STYLE + self._caption_html()
        self._image.value = self.png()

    def __repr__(self) -> str:
        return f"AccuracyPlot(lines={len(self._histories)})"
