"""`Playground`: the "try it yourself" panel: sliders, a dropdown and a run button.

    def experiment(learning_rate, rounds, workers, split, dashboard):
        ...                      # train, calling dashboard.reset(...) and dashboard.log(...)
        return accuracies        # optional: test accuracy after each round

    playground = Playground(experiment, learning_rate=0.1, rounds=10, workers=2,
                            split=["even", "uneven"])
    display(playground)
    playground.run()             # once with the defaults: what a headless run shows

The panel owns a `TrainingDashboard` and hands it to the experiment. When the
experiment returns its accuracy per round, each run becomes one line of an accuracy
plot, so runs with different settings can be compared. The panel prints nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import ipywidgets as widgets

from federated.language import tr
from federated.widgets.dashboard import TrainingDashboard, format_loss
from federated.widgets.i18n import Labels, split_label
from federated.widgets.plots import AccuracyPlot, run_label
from federated.widgets.style import STYLE, mark

Range = int | tuple[int, int, int]  # a default, or (default, lowest, highest)
#: learning rates on offer: round values a learner can compare (the default is added)
RATES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Run:
    """One press of the run button: its settings and what the experiment returned."""

    number: int
    settings: dict[str, Any]
    result: Any


def _bounds(value: Range, low: int, high: int) -> tuple[int, int, int]:
    if isinstance(value, tuple):
        return value
    return value, min(low, value), max(high, value)


class Playground(widgets.VBox):
    """Controls for learning rate, rounds, workers and split, and a button that runs."""

    def __init__(
        self,
        experiment: Callable[..., Any],
        learning_rate: float = 0.1,
        rounds: Range = 10,
        workers: Range = 2,
        split: Sequence[str] = ("iid", "non_iid"),
        lang: str | None = None,
    ) -> None:
        if not split:
            raise ValueError(tr("split needs at least one choice, e.g. ['iid', 'non_iid']"))
        self.experiment = experiment
        self.t = t = Labels(lang)
        self.runs: list[Run] = []
        style = {"description_width": "10em"}
        layout = widgets.Layout(width="30em")
        # a slider over fixed values: a log slider would move 0.05 to 0.0501
        rates = sorted({*RATES, float(learning_rate)})
        self.learning_rate = widgets.SelectionSlider(
            options=[(f"{rate:g}", rate) for rate in rates],
            value=float(learning_rate),
            description=t.gettext("learning rate"),
            style=style,
            layout=layout,
        )
        value, low, high = _bounds(rounds, 1, 30)
        self.rounds = widgets.IntSlider(
            value=value,
            min=low,
            max=high,
            description=t.gettext("rounds"),
            style=style,
            layout=layout,
        )
        value, low, high = _bounds(workers, 1, 5)
        self.workers = widgets.IntSlider(
            value=value,
            min=low,
            max=high,
            description=t.gettext("workers"),
            style=style,
            layout=layout,
        )
        self.split = widgets.Dropdown(
            options=[(split_label(t, key), key) for key in split],
            value=split[0],
            description=t.gettext("split"),
            style=style,
            layout=layout,
        )
        self.button = widgets.Button(description=t.gettext("Run"), button_style="primary")
        self.button.on_click(self._clicked)
        self.status = widgets.HTML()
        self.dashboard = TrainingDashboard(lang=self.t.lang)
        self.accuracy = AccuracyPlot(lang=self.t.lang)
        self.accuracy.layout.display = "none"  # until an experiment returns accuracies
        title = t.gettext("Try it yourself")
        title = widgets.HTML(f'{STYLE}<b class="fl-title">{escape(title)}</b>')
        hint = t.gettext("Change a setting, then press Run.")
        hint = widgets.HTML(f'<span style="color:#555">{escape(hint)}</span>')
        controls = [self.learning_rate, self.rounds, self.workers, self.split]
        super().__init__(
            [
                title,
                hint,
                *controls,
                widgets.HBox([self.button, self.status]),
                self.dashboard,
                self.accuracy,
            ]
        )
        mark(self, "fl-playground")

    @property
    def settings(self) -> dict[str, Any]:
        """The values the next run will use."""
        return {
            "learning_rate": float(self.learning_rate.value),
            "rounds": int(self.rounds.value),
            "workers": int(self.workers.value),
            "split": self.split.value,
        }

    def run(self) -> None:
        """Run the experiment once with the current settings (errors are raised)."""
        settings = self.settings
        number = len(self.runs) + 1
        self.button.disabled = True
        self.status.value = escape(self.t.gettext("running…"))
        try:
            result = self.experiment(dashboard=self.dashboard, **settings)
        except BaseException:
            self.status.value = escape(self.t.gettext("the run stopped with an error"))
            raise
        finally:
            self.button.disabled = False
        self.dashboard.finish()
        self.runs.append(Run(number, settings, result))
        self.status.value = escape(self.summary(self.runs[-1]))
        if isinstance(result, Sequence) and result and not isinstance(result, str):
            self.accuracy.add(f"{number}: {run_label(self.t, settings)}", result)
            self.accuracy.layout.display = None

    def summary(self, run: Run) -> str:
        """The line beside the button after a run."""
        t = self.t
        text = t.gettext("run {number} done").format(number=run.number)
        result = run.result
        if isinstance(result, Sequence) and result and not isinstance(result, str):
            text += " · " + t.gettext("final accuracy {value}").format(value=f"{result[-1]:.3f}")
        else:
            losses = [loss for loss in self.dashboard.history.last().values() if loss is not None]
            if losses:
                worst = max(losses, key=lambda v: v if math.isfinite(v) else math.inf)
                # TRANSLATORS: after a run: the largest of the workers' latest losses
                text += " · " + t.gettext("highest last loss {value}").format(
                    value=format_loss(worst)
                )
        return text

    def _clicked(self, _button: widgets.Button) -> None:
        """A button press in a live notebook: show an error instead of losing it."""
        try:
            self.run()
        except Exception as error:  # noqa: BLE001 - shown to the learner
            stopped = self.t.gettext("the run stopped with an error")
            self.status.value = escape(f"{stopped}: {type(error).__name__}: {error}")

    def __repr__(self) -> str:
        return f"Playground(settings={self.settings!r})"
