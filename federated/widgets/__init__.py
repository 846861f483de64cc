"""Widgets for the lessons: watch training, look inside workers, try settings.

    from federated.widgets import TrainingDashboard, WorkerInspector

- `TrainingDashboard`: one loss curve per worker, the round, the step, a progress bar;
  live while a lesson's loop calls `dashboard.log(worker, loss, round=r)`.
- `WorkerInspector`: what each worker holds (id, kind, shape, dtype, private or not).
- `AccuracyPlot`: test accuracy after each round, one line per run (matplotlib).
- `Playground`: "try it yourself": sliders, a split dropdown and a run button.
- `progress`: a `tqdm.auto` bar for long loops.

Importing this module needs ipywidgets but no running notebook: outside a kernel the
widgets still keep and compute everything they would show (tests read that). Labels are
in the language of the notebook being run; see `federated.widgets.i18n`.
"""

from federated.widgets.bars import progress
from federated.widgets.dashboard import LossHistory, TrainingDashboard
from federated.widgets.i18n import Labels, resolve
from federated.widgets.inspector import Held, WorkerInspector, holdings
from federated.widgets.playground import Playground, Run
from federated.widgets.plots import AccuracyPlot

__all__ = [
    "AccuracyPlot",
    "Held",
    "Labels",
    "LossHistory",
    "Playground",
    "Run",
    "TrainingDashboard",
    "WorkerInspector",
    "holdings",
    "progress",
    "resolve",
]
