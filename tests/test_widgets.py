"""The widgets' data: the numbers and labels they would draw, checked without a browser.

Widgets made outside a kernel keep their state all the same (ipywidgets gives them a
dummy comm), so each test builds the real widget and reads what it computed.
"""

from __future__ import annotations

import io
import math
import textwrap
import tokenize
import warnings
from pathlib import Path

import pytest
import torch

import federated
from federated.remote import RemoteObject
from federated.widgets import (
    AccuracyPlot,
    Labels,
    LossHistory,
    Playground,
    TrainingDashboard,
    WorkerInspector,
    bars,
    chart,
    i18n,
    plots,
    style,
)
from tests.helpers import workers
from tools import kernel

ROOT = Path(__file__).resolve().parent.parent
DEVANAGARI = range(0x0900, 0x0980)


def devanagari(text: str) -> bool:
    return any(ord(c) in DEVANAGARI for c in text)


@pytest.fixture(autouse=True)
def _english_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run from the repository root; a FEDERATED_LANG of the shell must not leak in."""
    monkeypatch.delenv(i18n.VARIABLE, raising=False)


# ---- which language ----------------------------------------------------------------------


PO = textwrap.dedent(
    """\
    msgid ""
    msgstr ""
    "Content-Type: text/plain; charset=utf-8\\n"
    "Language: hi\\n"

    msgid "loss"
    msgstr "लॉस"

    #, fuzzy
    msgid "round"
    msgstr "दौर"
    """
)


@pytest.fixture
def locales(tmp_path: Path) -> Path:
    path = i18n.catalogue_path("hi", tmp_path / "locales")
    path.parent.mkdir(parents=True)
    path.write_text(PO, encoding="utf-8")
    return tmp_path / "locales"


def test_language_comes_from_the_argument_then_the_variable_never_the_folder(
    locales: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lesson_dir = tmp_path / "notebooks" / "hi"
    lesson_dir.mkdir(parents=True)
    monkeypatch.chdir(lesson_dir)
    assert i18n.resolve(None, locales) == "en"  # a folder named hi chooses nothing
    monkeypatch.setenv(i18n.VARIABLE, "hi_IN.UTF-8")
    assert i18n.resolve(None, locales) == "hi"  # the project kernel's variable
    assert i18n.resolve("en", locales) == "en"  # the argument beats it
    monkeypatch.delenv(i18n.VARIABLE)
    assert i18n.resolve("hi", locales) == "hi"


def test_the_project_kernels_name_the_language_of_their_notebooks() -> None:
    for locale in ("en", "hi"):
        assert kernel.spec(locale)["env"][i18n.VARIABLE] == locale
        assert kernel.notebook_kernelspec(locale)["name"] == kernel.name(locale)


def test_the_shipped_catalogue_is_inside_the_package() -> None:
    assert Path(federated.__file__).parent / "locales" == i18n.LOCALES_DIR
    assert i18n.catalogue_path("hi").is_file()


def test_an_unknown_language_warns_and_falls_back_to_english(locales: Path) -> None:
    with pytest.warns(UserWarning, match="no 'fr' labels"):
        assert i18n.resolve("fr", locales) == "en"


def test_labels_come_from_the_catalogue_and_fuzzy_ones_stay_english(locales: Path) -> None:
    t = Labels("hi", locales)
    assert t.gettext("loss") == "लॉस"
    assert t.gettext("round") == "round"  # fuzzy: not published
    assert t.gettext("not in the catalogue") == "not in the catalogue"
    assert Labels("en", locales).gettext("loss") == "loss"


def test_the_committed_hindi_catalogue_is_read() -> None:
    t = Labels("hi")
    assert t.gettext("Loss per worker") == "हर वर्कर का लॉस"
    assert t.gettext("round {round}/{rounds}").format(round=2, rounds=5) == "राउंड 2/5"


def test_no_label_hides_in_an_f_string() -> None:
    """Babel's extractor cannot see a gettext call inside an f-string (Python 3.11)."""
    hidden = []
    for path in sorted((ROOT / "federated" / "widgets").glob("*.py")):
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text("utf-8")).readline)
        for token in tokens:
            text = token.string
            is_f_string = token.type == tokenize.STRING and text[:2].lower() in ('f"', "f'")
            if is_f_string and "gettext(" in text:
                hidden.append(f"{path.name}:{token.start[0]}")
    assert hidden == []


def test_split_names_from_the_lessons_are_shown_translated() -> None:
    assert i18n.split_label(Labels("en"), "iid") == "shuffled (IID)"
    assert devanagari(i18n.split_label(Labels("hi"), "non_iid"))
    assert i18n.split_label(Labels("hi"), "mine") == "mine"


# ---- the chart -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "step"), [(10, 2), (1, 0.2), (0.37, 0.1), (160, 50), (3, 1.0), (0, 1.0)]
)
def test_nice_steps_are_one_two_or_five_times_a_power_of_ten(span: float, step: float) -> None:
    assert chart.nice_step(span) == pytest.approx(step)


def test_a_linear_axis_starts_and_ends_on_round_ticks() -> None:
    axis = chart.linear_axis(0.0, 3.07)
    assert (axis.low, axis.high) == (0.0, 4.0)
    assert axis.ticks == (0.0, 1.0, 2.0, 3.0, 4.0)
    assert axis.labels == ("0", "1", "2", "3", "4")
    assert chart.linear_axis(0.0, 0.9).labels[:3] == ("0.0", "0.2", "0.4")


def test_a_loss_spanning_decades_gets_a_log_axis() -> None:
    axis = chart.value_axis([3.07, 0.5, 0.0061])
    assert axis.log
    assert axis.ticks == (0.001, 0.01, 0.1, 1.0, 10.0)
    assert axis.fraction(0.1) == pytest.approx(0.5)
    assert not chart.value_axis([1.0, 0.5, 0.2]).log


def test_the_step_axis_ends_at_the_expected_number_of_steps() -> None:
    axis = chart.count_axis(160)
    assert (axis.low, axis.high) == (0.0, 160.0)
    assert axis.ticks == (0.0, 50.0, 100.0, 150.0)


def test_long_curves_are_thinned_keeping_the_last_point() -> None:
    points = [(i, 1.0 / i) for i in range(1, 1001)]
    kept = chart.thin(points, limit=400)
    assert len(kept) <= 401
    assert kept[0] == points[0] and kept[-1] == points[-1]


def test_pixels_map_the_axes_onto_the_frame_and_skip_a_diverged_loss() -> None:
    drawn = chart.line_chart({"bob": [(1, 1.0), (2, math.inf), (4, 0.5)]}, steps=4)
    frame = drawn.frame
    assert drawn.pixel(0, 0) == (frame.left, frame.height - frame.bottom)
    assert drawn.pixel(4, drawn.y.high) == (frame.width - frame.right, frame.top)
    assert len(drawn.polyline("bob")) == 2


def test_a_log_axis_over_many_decades_keeps_to_a_few_ticks() -> None:
    axis = chart.log_axis(1e-3, 1e38)
    assert 2 <= len(axis.ticks) <= chart.MAX_LOG_TICKS
    assert axis.low <= 1e-3 and axis.high >= 1e38
    assert chart.log_axis(0.01, 10).ticks == (0.01, 0.1, 1.0, 10.0)


def test_a_diverging_loss_is_marked_and_leaves_the_axis_readable() -> None:
    curve = [(1, 2.3), (2, 40.0), (3, 9e4), (4, 3e38), (5, math.nan), (6, math.inf)]
    drawn = chart.line_chart({"bob": curve, "alice": [(1, 2.0), (6, 1.5)]}, steps=6)
    assert drawn.y.high <= 1e6 and len(drawn.y.ticks) <= chart.MAX_LOG_TICKS
    assert drawn.divergence("bob") == 4 and drawn.divergence("alice") is None
    assert len(drawn.polyline("bob")) == 3
    svg = chart.svg(drawn, x_label="round", y_label="loss", title="Loss", diverged_label="gone")
    assert svg.count('class="fl-diverged"') == 1
    assert 'data-worker="bob" stroke' in svg and "bob: gone" in svg
    tick_labels = svg.count('text-anchor="end" fill="#444"')
    assert tick_labels == len(drawn.y.ticks) <= chart.MAX_LOG_TICKS
    assert "nan" not in svg and "inf" not in svg and "e+38" not in svg


def test_a_diverged_point_survives_thinning() -> None:
    curve = [(i, 1.0) for i in range(1, 1001)]
    curve[500] = (501, math.nan)
    drawn = chart.line_chart({"bob": curve})
    assert drawn.divergence("bob") == 501


def test_the_svg_has_one_polyline_per_curve_and_escapes_labels() -> None:
    drawn = chart.line_chart({"bob": [(1, 1.0), (2, 0.5)], "alice": [(1, 0.8)]})
    svg = chart.svg(drawn, x_label="step <x>", y_label="loss", title="Loss")
    assert svg.count("<polyline") == 2
    assert 'data-worker="alice"' in svg
    assert "step &lt;x&gt;" in svg


# ---- the dashboard -------------------------------------------------------------------------


def test_history_keeps_each_workers_losses_in_order() -> None:
    history = LossHistory(["bob", "alice"])
    history.add("bob", 1.0, round=1)
    history.add("alice", 0.8, round=1)
    history.add("bob", 0.5, round=2)
    assert history.curves() == {"bob": [(1, 1.0), (2, 0.5)], "alice": [(1, 0.8)]}
    assert history.last() == {"bob": 0.5, "alice": 0.8}
    assert len(history) == 3


def test_dashboard_draws_what_was_logged_and_counts_the_steps() -> None:
    bob, alice = workers("bob", "alice")
    dashboard = TrainingDashboard([bob, alice], rounds=3, lang="en")
    for r in range(1, 3):
        dashboard.log(bob, torch.tensor(1.0 / r), round=r)
        dashboard.log("alice", 0.5 / r, round=r)
    assert dashboard.history.curves() == {
        "bob": [(1, 1.0), (2, 0.5)],
        "alice": [(1, 0.5), (2, 0.25)],
    }
    assert dashboard.progress == (4, 6)
    assert dashboard.status() == "round 2/3 · step 4/6"
    assert dashboard.legend() == [("bob", chart.PALETTE[0], 0.5), ("alice", chart.PALETTE[1], 0.25)]
    drawn = dashboard.chart()
    assert drawn.x.high == 3  # three steps expected per worker
    assert dashboard.x_label() == "round"  # one loss per worker and round
    dashboard.reset(["bob"], rounds=2, steps_per_round=16)
    assert dashboard.x_label() == "step on the worker"
    assert len(drawn.polyline("alice")) == 2


def test_dashboard_widgets_show_the_last_state_after_finish() -> None:
    dashboard = TrainingDashboard(["bob"], rounds=200, lang="en")
    for step in range(1, 11):
        dashboard.log("bob", 1.0 / step, round=step)
    dashboard.finish()
    assert dashboard._bar.value == 10 and dashboard._bar.max == 200
    assert dashboard._chart.value.count(",") == 10  # ten points, one comma each
    assert "round 10/200" in dashboard._status.value


def test_the_last_step_is_drawn_without_finish_and_the_bar_turns_green() -> None:
    dashboard = TrainingDashboard(["bob", "alice"], rounds=60, lang="en")
    for r in range(1, 61):
        dashboard.log("bob", 1.0, round=r)
        dashboard.log("alice", 2.0, round=r)
    assert dashboard._chart.value.count(",") == 120
    assert dashboard._bar.bar_style == "success"


def test_dashboard_labels_are_hindi_in_hindi_and_its_text_form_is_not() -> None:
    english = TrainingDashboard(["bob"], rounds=2, lang="en")
    hindi = TrainingDashboard(["bob"], rounds=2, lang="hi")
    for dashboard in (english, hindi):
        dashboard.log("bob", 0.5, round=1)
    assert hindi.status() == "राउंड 1/2 · क़दम 1/2"
    assert devanagari(hindi._title.value) and devanagari(hindi._chart.value)
    assert not devanagari(english._chart.value)
    assert repr(english) == repr(hindi) == "TrainingDashboard(workers=['bob'], rounds=2)"


def test_a_diverged_loss_is_marked_in_hindi_too() -> None:
    hindi = TrainingDashboard(["bob"], rounds=3, lang="hi")
    hindi.log("bob", 0.5, round=1)
    hindi.log("bob", float("nan"), round=2)
    marks = hindi._chart.value.split('class="fl-diverged"')[1:]
    assert len(marks) == 1
    label = Labels("hi").gettext("diverged")
    assert devanagari(label) and f"bob: {label}" in marks[0]


def test_dashboard_refuses_a_loss_still_on_a_worker() -> None:
    (bob,) = workers("bob")
    dashboard = TrainingDashboard([bob], lang="en")
    with pytest.raises(TypeError, match=r"loss.get\(\).item\(\)"):
        dashboard.log(bob, torch.tensor(1.0).send(bob))


def test_reset_starts_an_empty_run_with_new_workers() -> None:
    dashboard = TrainingDashboard(["bob"], rounds=2, lang="en")
    dashboard.log("bob", 1.0)
    dashboard.reset(["carol", "dave"], rounds=4, steps_per_round=3)
    assert dashboard.history.curves() == {"carol": [], "dave": []}
    assert dashboard.progress == (0, 12)
    assert dashboard.status() == "round 0/4 · step 0/12"


# ---- the inspector -------------------------------------------------------------------------


def test_inspector_lists_id_kind_shape_dtype_privacy_and_tags() -> None:
    bob, alice = workers("bob", "alice")
    x = torch.zeros(2, 3).send(bob)
    bob.load(torch.arange(4), tag=["#labels"], private=True)
    chain = x.send(alice)  # alice holds a pointer to bob's tensor
    inspector = WorkerInspector([bob, alice], lang="en")
    rows = {(row.worker, row.id): row for row in inspector.rows}
    assert rows["bob", 1].kind == "tensor"
    assert (rows["bob", 1].shape, rows["bob", 1].dtype, rows["bob", 1].private) == (
        (2, 3),
        "float32",
        False,
    )
    assert (rows["bob", 2].dtype, rows["bob", 2].private, rows["bob", 2].tags) == (
        "int64",
        True,
        ("#labels",),
    )
    assert rows["alice", 1].kind == "pointer" and rows["alice", 1].points_to == "bob:1"
    assert chain.location is alice


def test_inspector_lists_a_remote_workers_listing_without_asking_per_object() -> None:
    class Listing:
        """Stands in for a RemoteWorker: one `objects` request answers everything."""

        id = "far"
        requests = 0

        @property
        def objects(self) -> dict:
            Listing.requests += 1
            return {
                3: RemoteObject((4, 2), torch.float64, True, False),
                7: RemoteObject((1,), torch.int64, False, True),
            }

    rows = WorkerInspector([Listing()], lang="en").rows
    assert [(r.id, r.kind, r.shape, r.dtype, r.private) for r in rows] == [
        (3, "tensor", (4, 2), "float64", True),
        (7, "pointer", (1,), "int64", False),
    ]
    assert Listing.requests == 1


def test_inspector_reads_the_workers_again_on_refresh() -> None:
    (bob,) = workers("bob")
    inspector = WorkerInspector([bob], lang="en")
    assert inspector.rows == []
    assert "holds nothing" in inspector._table.value
    kept = torch.ones(5).send(bob)
    assert inspector.rows == []  # nothing changes until asked
    inspector.refresh()
    assert [(row.id, row.shape) for row in inspector.rows] == [(1, (5,))]
    del kept
    inspector._button.click()  # the button does the same
    assert inspector.rows == []


def test_inspector_table_headers_are_hindi_in_hindi() -> None:
    (bob,) = workers("bob")
    kept = torch.ones(1).send(bob)
    table = WorkerInspector([bob], lang="hi")._table.value
    assert "आकार" in table and "निजी" in table and "नहीं" in table
    assert repr(WorkerInspector([bob], lang="hi")) == "WorkerInspector(workers=['bob'])"
    del kept


# ---- the accuracy plot ---------------------------------------------------------------------


def test_accuracy_plot_draws_one_line_per_history_by_round() -> None:
    plot = AccuracyPlot({"iid": [0.5, 0.9], "non_iid": [0.2, 0.4, 0.6]}, lang="en")
    assert plot.series == {
        "shuffled (IID)": [(1, 0.5), (2, 0.9)],
        "sorted by label (non-IID)": [(1, 0.2), (2, 0.4), (3, 0.6)],
    }
    axes = plot.figure().axes[0]
    assert [line.get_label() for line in axes.get_lines()] == list(plot.series)
    assert list(axes.get_lines()[1].get_ydata()) == [0.2, 0.4, 0.6]
    assert axes.get_title() == "Test accuracy after each round"
    assert bytes(plot._image.value[:4]) == b"\x89PNG"
    assert repr(plot) == "AccuracyPlot(lines=2)"


def test_hindi_plot_labels_are_in_the_figure_when_a_devanagari_font_exists() -> None:
    if plots.devanagari_font() is None:
        pytest.skip("no Devanagari font on this machine")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "Glyph missing from font" would fail here
        plot = AccuracyPlot({"iid": [0.5]}, lang="hi")
    assert plot.text_in_figure
    assert plot.figure().axes[0].get_xlabel() == "राउंड"
    assert plot._caption.value == style.STYLE  # no HTML caption, only the shared style


def test_without_a_devanagari_font_the_hindi_labels_move_out_of_the_raster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plots, "devanagari_font", lambda: None)
    plot = AccuracyPlot({"iid": [0.5]}, lang="hi")
    assert not plot.text_in_figure
    axes = plot.figure().axes[0]
    assert (axes.get_title(), axes.get_xlabel(), axes.get_legend()) == ("", "", None)
    assert "हर राउंड के बाद टेस्ट सटीकता" in plot._caption.value
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Glyph missing from font" either
        plot.png()


def test_a_found_devanagari_font_really_has_devanagari() -> None:
    family = plots.devanagari_font()
    if family is None:
        pytest.skip("no Devanagari font on this machine")
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    path = font_manager.findfont(font_manager.FontProperties(family=family))
    assert 0x0915 in FT2Font(path).get_charmap()  # क


# ---- try it yourself -----------------------------------------------------------------------


def test_playground_runs_the_experiment_with_its_settings() -> None:
    calls = []

    def experiment(learning_rate, rounds, workers, split, dashboard):
        calls.append((learning_rate, rounds, workers, split))
        dashboard.reset([f"w{i}" for i in range(workers)], rounds=rounds)
        for r in range(1, rounds + 1):
            for i in range(workers):
                dashboard.log(f"w{i}", 1.0 / r, round=r)
        return [0.5 + 0.1 * r for r in range(rounds)]

    playground = Playground(
        experiment,
        learning_rate=0.05,
        rounds=(3, 1, 8),
        workers=2,
        split=["iid", "non_iid"],
        lang="en",
    )
    assert playground.settings == {
        "learning_rate": 0.05,
        "rounds": 3,
        "workers": 2,
        "split": "iid",
    }
    assert (playground.rounds.min, playground.rounds.max) == (1, 8)
    playground.run()
    playground.split.value = "non_iid"
    playground.workers.value = 4
    playground.button.click()
    assert calls == [(0.05, 3, 2, "iid"), (0.05, 3, 4, "non_iid")]
    assert [run.number for run in playground.runs] == [1, 2]
    assert playground.dashboard.progress == (12, 12)
    assert list(playground.accuracy.series) == [
        "1: learning rate 0.05 · 3 rounds · 2 workers · shuffled (IID)",
        "2: learning rate 0.05 · 3 rounds · 4 workers · sorted by label (non-IID)",
    ]
    assert playground.status.value == "run 2 done · final accuracy 0.700"
    assert not playground.button.disabled


def test_playground_without_accuracies_summarises_the_losses() -> None:
    def experiment(learning_rate, rounds, workers, split, dashboard):
        dashboard.reset(["bob", "alice"], rounds=1)
        dashboard.log("bob", 0.25)
        dashboard.log("alice", 0.5)

    playground = Playground(experiment, rounds=1, split=["even", "uneven"], lang="en")
    playground.run()
    assert playground.status.value == "run 1 done · highest last loss 0.5"
    assert playground.accuracy.layout.display == "none"
    assert [label for label, _ in playground.split.options] == ["equal parts", "one owner has most"]


def test_a_failing_run_is_shown_when_clicked_and_raised_when_called() -> None:
    def experiment(**_settings):
        raise ValueError("too many workers")

    playground = Playground(experiment, lang="en")
    playground.button.click()
    assert "ValueError: too many workers" in playground.status.value
    with pytest.raises(ValueError):
        playground.run()
    assert not playground.button.disabled


def test_playground_controls_are_labelled_in_hindi() -> None:
    playground = Playground(lambda **_: None, lang="hi")
    assert playground.learning_rate.description == "लर्निंग रेट"
    assert playground.button.description == "चलाएँ"
    assert repr(playground) == repr(Playground(lambda **_: None, lang="en"))


# ---- progress bars -------------------------------------------------------------------------


def test_progress_bars_follow_tqdm_disable_even_in_a_notebook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert bars.disabled()
    bar = bars.progress(range(3), lang="hi")
    assert bar.disable and list(bar) == [0, 1, 2]
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not bars.disabled()
    bar = bars.progress(range(2), lang="hi")
    assert bar.desc == "राउंड"
    bar.close()
