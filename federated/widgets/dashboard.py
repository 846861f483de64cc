"""`TrainingDashboard`: one loss curve per worker and a progress bar, live while training.

    dashboard = TrainingDashboard([bob, alice], rounds=10)
    display(dashboard)
    for r in range(1, 11):
        for data, target in datasets:
            ...
            dashboard.log(data.location, loss.get().item(), round=r)

The printed numbers of a lesson stay as they are (CI checks them); the dashboard is the
picture beside them. It prints nothing, and its text/plain form names only the workers
and the rounds, so the English and the Hindi notebook show the same text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import ipywidgets as widgets

from federated.language import tr
from federated.widgets import chart
from federated.widgets.i18n import Labels
from federated.widgets.style import STYLE, mark

#: the chart is redrawn about this many times per run (and always at its end)
REDRAWS = 50


def worker_id(worker: Any) -> str:
    """A worker's id, whether given a `VirtualWorker` or its id."""
    return str(getattr(worker, "id", worker))


@dataclass(frozen=True)
class Point:
    step: int  # the how-manieth loss of this worker
    round: int
    loss: float


class LossHistory:
    """Every logged loss, per worker, in the order the workers first appeared."""

    def __init__(self, workers: Iterable[Any] = ()) -> None:
        self._points: dict[str, list[Point]] = {worker_id(w): [] for w in workers}

    @property
    def workers(self) -> list[str]:
        return list(self._points)

    def add(self, worker: Any, loss: float, round: int) -> Point:  # noqa: A002
        points = self._points.setdefault(worker_id(worker), [])
        point = Point(len(points) + 1, round, loss)
        points.append(point)
        return point

    def points(self, worker: Any) -> list[Point]:
        return list(self._points[worker_id(worker)])

    def curves(self) -> dict[str, list[tuple[float, float]]]:
        """(step, loss) per worker: what the chart draws."""
        return {w: [(p.step, p.loss) for p in pts] for w, pts in self._points.items()}

    def last(self) -> dict[str, float | None]:
        return {w: (pts[-1].loss if pts else None) for w, pts in self._points.items()}

    def __len__(self) -> int:
        return sum(len(points) for points in self._points.values())


def _as_float(loss: Any) -> float:
    """A number from a float or a local 0-d tensor; a pointer must be `.get()` first."""
    if hasattr(loss, "location") and getattr(loss, "location", None) is not None:
        raise TypeError(
            tr("dashboard.log needs the loss here: fetch it with `loss.get().item()` first")
        )
    return float(loss.item() if hasattr(loss, "item") else loss)


def format_loss(value: float | None) -> str:
    if value is None:
        return "–"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


class TrainingDashboard(widgets.VBox):
    """Loss per worker, the round and the step, updated by `log` while training runs.

    `steps_per_round` is how many times `log` is called per round; by default once per
    worker, as when each worker trains one step (or reports one loss) per round.
    """

    def __init__(
        self,
        workers: Sequence[Any] = (),
        rounds: int = 1,
        steps_per_round: int | None = None,
        lang: str | None = None,
    ) -> None:
        self.t = Labels(lang)
        t = self.t
        title = t.gettext("Loss per worker")
        self._title = widgets.HTML(f'{STYLE}<div class="fl-title"><b>{escape(title)}</b></div>')
        self._chart = widgets.HTML()
        self._legend = widgets.HTML()
        self._bar = widgets.IntProgress(min=0, max=1, value=0)
        self._status = widgets.HTML()
        super().__init__(
            [self._title, self._chart, self._legend, widgets.HBox([self._bar, self._status])]
        )
        mark(self, "fl-dashboard")
        self.reset(workers, rounds, steps_per_round)

    # ---- what a lesson calls --------------------------------------------------------------

    def reset(
        self, workers: Sequence[Any] = (), rounds: int = 1, steps_per_round: int | None = None
    ) -> None:
        """Start again, empty (the try-it-yourself panel does this before each run)."""
        if rounds < 1:
            raise ValueError(tr("rounds must be at least 1"))
        self.history = LossHistory(workers)
        self.rounds = rounds
        self._steps_per_round = steps_per_round
        self.round = 0
        self._since_redraw = 0
        self._redraw()

    def log(self, worker: Any, loss: Any, round: int | None = None) -> None:  # noqa: A002
        """One loss of one worker; `round` counts from 1 (default: the current round)."""
        value = _as_float(loss)
        self.round = max(self.round, 1 if round is None else round)  # rounds never go back
        known = len(self.history.workers)
        self.history.add(worker, value, self.round)
        self._since_redraw += 1
        every = max(1, self.total_steps // REDRAWS)
        if (
            self._since_redraw >= every
            or len(self.history) >= self.total_steps
            or len(self.history.workers) != known
        ):
            self._redraw()
        else:
            self._update_progress()

    def finish(self) -> None:
        """Draw whatever was logged since the last redraw."""
        self._redraw()

    # ---- the numbers it draws -------------------------------------------------------------

    @property
    def steps_per_round(self) -> int:
        if self._steps_per_round is not None:
            return self._steps_per_round
        return max(1, len(self.history.workers))

    @property
    def total_steps(self) -> int:
        return self.rounds * self.steps_per_round

    @property
    def progress(self) -> tuple[int, int]:
        """(losses logged, losses expected), the progress bar's value and maximum."""
        return min(len(self.history), self.total_steps), self.total_steps

    def status(self) -> str:
        """The text beside the progress bar."""
        t = self.t
        done, total = self.progress
        shown = min(self.round, self.rounds)
        # TRANSLATORS: beside the progress bar: the round being trained, of how many
        text = t.gettext("round {round}/{rounds}").format(round=shown, rounds=self.rounds)
        # TRANSLATORS: beside the progress bar: losses logged so far, of how many expected
        return text + " · " + t.gettext("step {step}/{steps}").format(step=done, steps=total)

    @property
    def steps_per_worker(self) -> int:
        """How many losses each worker is expected to log: the x axis's length."""
        return -(-self.total_steps // max(1, len(self.history.workers)))

    def chart(self) -> chart.Chart:
        return chart.line_chart(self.history.curves(), steps=self.steps_per_worker)

    def x_label(self) -> str:
        """The x axis's name: rounds while each worker logs once a round (the default),
        else the steps on each worker."""
        if self._steps_per_round is None:
            return self.t.gettext("round")
        # TRANSLATORS: x axis: the how-manieth training step of each worker
        return self.t.gettext("step on the worker")

    def legend(self) -> list[tuple[str, str, float | None]]:
        """(worker, colour, last loss) for each curve, in the chart's colour order."""
        last = self.history.last()
        return [(w, chart.color(i), last[w]) for i, w in enumerate(self.history.workers)]

    # ---- drawing --------------------------------------------------------------------------

    def _update_progress(self) -> None:
        done, total = self.progress
        self._bar.max = total
        self._bar.value = done
        self._bar.bar_style = "success" if done >= total else ""
        self._status.value = f'<span class="fl-status">{escape(self.status())}</span>'

    def _redraw(self) -> None:
        t = self.t
        self._since_redraw = 0
        self._chart.value = chart.svg(
            self.chart(),
            x_label=self.x_label(),
            y_label=t.gettext("loss"),
            title=t.gettext("Loss per worker"),
            # TRANSLATORS: marks the step where a worker's loss became NaN or huge
            diverged_label=t.gettext("diverged"),
        )
        # TRANSLATORS: in the legend, before the latest loss of a worker
        last_label = escape(t.gettext("last loss"))
        items = [
            f'<span class="fl-legend-item" style="margin-right:1.2em">'
            f'<span style="display:inline-block;width:1.6em;height:3px;background:{colour};'
            f'vertical-align:middle;margin-right:.4em"></span>{escape(worker)} '
            f'<span style="color:#666">({last_label} {format_loss(loss)})</span></span>'
            for worker, colour, loss in self.legend()
        ]
        self._legend.value = (
            f'<div class="fl-legend" style="line-height:1.6">{"".join(items)}</div>'
        )
        self._update_progress()

    def __repr__(self) -> str:
        return f"TrainingDashboard(workers={self.history.workers!r}, rounds={self.rounds})"
