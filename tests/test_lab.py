"""`make lab` as a learner meets it: JupyterLab serves the lessons, also as root, and a
lesson that is opened, run and saved keeps what it should.

A real JupyterLab is started with `tools.lab.command()` (what `make lab` runs) on a
folder in tmp_path, with a fixed token and a free port, and stopped at the end. The
browser tests drive it with Playwright and Debian's Chromium (`make system-packages`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbformat.sign import NotebookNotary

from tools import browser, build, lab, widget_state
from tools.execute import execute
from tools.paths import Lesson

pytestmark = pytest.mark.notebook

TOKEN = "federated-test-token"
LESSON = Lesson(number="01", slug="01_widgets")
WIDGET_CELL = """\
from federated.widgets import TrainingDashboard

dashboard = TrainingDashboard(["alice", "bob"], rounds=2)
for round_ in range(2):
    for worker in ("alice", "bob"):
        dashboard.log(worker, 1.0 / (round_ + 1), round=round_)
dashboard.finish()
dashboard"""


@dataclass
class Server:
    url: str
    root: Path
    process: subprocess.Popen

    def get(self, path: str) -> tuple[int, str]:
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"token {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """JupyterLab as `make lab` starts it, on an empty folder, as whoever runs the tests."""
    root = tmp_path_factory.mktemp("lab")
    state = tmp_path_factory.mktemp("jupyter-state")
    # Port 0: the server binds one the system picks and writes it into its runtime file
    # (a port chosen here and bound later could be taken in between by another process).
    argv = lab.command(
        root,
        f"--port=0 --ServerApp.port_retries=0 --IdentityProvider.token={TOKEN}"
        " --ServerApp.ip=127.0.0.1",
        browser=False,
    )
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
    }
    log = state / "stderr.txt"  # a file: a pipe nobody reads could fill and stall the server
    with open(log, "wb") as stderr:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    url = ""
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                if not url:  # this server's alone: the runtime folder is new
                    info = next((state / "runtime").glob("jpserver-*.json"))
                    url = f"http://127.0.0.1:{json.loads(info.read_text('utf-8'))['port']}"
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5).close()
                break
            except (OSError, StopIteration, ValueError, KeyError):  # not yet, or half written
                if process.poll() is not None:
                    pytest.fail(f"JupyterLab exited: {log.read_text('utf-8', 'replace')[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not answer within 90 s")
                time.sleep(0.5)
        yield Server(url, root, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def test_make_lab_runs_jupyterlab_as_root_with_extra_arguments() -> None:
    argv = lab.command(Path("notebooks"), "--port=8899 --ip=0.0.0.0", root=True, browser=False)
    assert argv[:3] == [sys.executable, "-m", "jupyterlab"]
    assert "--allow-root" in argv and "--no-browser" in argv
    assert argv[-2:] == ["--port=8899", "--ip=0.0.0.0"]
    assert "http://127.0.0.1:8888/lab?token=" in (lab.notice(argv) or "")
    user = lab.command(Path("notebooks"), "", root=False, browser=True)
    assert "--allow-root" not in user and "--no-browser" not in user
    assert lab.notice(user) is None
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text("utf-8")
    assert '$(PY) -m tools lab --lab-args="$(LAB_ARGS)"' in makefile


# ---- the pre-save hook that keeps saved widget state -------------------------------------

VIEW_OF = {"version_major": 2, "version_minor": 0}


def _widget_notebook(shown: list[str], state: dict[str, dict] | None) -> nbformat.NotebookNode:
    """A notebook whose code cells show the models `shown`, one a cell, with `state`."""
    cells = [
        nbformat.v4.new_code_cell(
            f"w{number}",
            id=f"cell-{number}",
            outputs=[
                nbformat.v4.new_output(
                    "display_data",
                    data={
                        "text/plain": "HTML()",
                        widget_state.VIEW: {"model_id": model, **VIEW_OF},
                    },
                )
            ],
        )
        for number, model in enumerate(shown)
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    if state is not None:
        notebook.metadata["widgets"] = {widget_state.STATE: {"state": state, **VIEW_OF}}
    return nbformat.from_dict(notebook)


def _html(value: str, layout: str) -> dict:
    return {"model_name": "HTMLModel", "state": {"value": value, "layout": f"IPY_MODEL_{layout}"}}


LAYOUT = {"model_name": "LayoutModel", "state": {}}
COMMITTED = {"a1": _html("first", "l1"), "a2": _html("second", "l1"), "l1": LAYOUT}


def _hook_save(root: Path, content: nbformat.NotebookNode) -> dict:
    """What the server writes for `content` saved over root/lesson.ipynb."""
    model = {"type": "notebook", "format": "json", "content": json.loads(json.dumps(content))}
    widget_state.pre_save(model=model, path="/lesson.ipynb", contents_manager=_Manager(root))
    return model["content"]


@dataclass
class _Manager:
    root_dir: str | Path


def test_saving_an_opened_lesson_keeps_its_saved_widget_state(tmp_path: Path) -> None:
    committed = _widget_notebook(["a1", "a2"], COMMITTED)
    build.write(committed, tmp_path / "lesson.ipynb")
    # what the widget manager sends before a run: no model (its kernel made none)
    for sent in (_widget_notebook(["a1", "a2"], {}), committed):  # and before it has
        saved = _hook_save(tmp_path, sent)  # touched the metadata at all
        assert nbformat.writes(nbformat.from_dict(saved)) == nbformat.writes(committed)


def test_a_run_is_saved_as_run_and_outputs_not_run_again_keep_their_state(
    tmp_path: Path,
) -> None:
    build.write(_widget_notebook(["a1", "a2"], COMMITTED), tmp_path / "lesson.ipynb")
    # the learner ran the first cell only: a new model, the second output is the old one
    ran = {"b1": _html("new", "k1"), "k1": LAYOUT, "unshown": _html("kernel only", "k1")}
    saved = _hook_save(tmp_path, _widget_notebook(["b1", "a2"], ran))
    state = saved["metadata"]["widgets"][widget_state.STATE]
    # the run's models as the widget manager sent them, plus what the old output needs;
    # nothing of the model the run replaced
    assert state["state"] == {**ran, "a2": COMMITTED["a2"], "l1": LAYOUT}
    assert (state["version_major"], state["version_minor"]) == (2, 0)
    # the whole lesson run again: exactly the new state
    rerun = {"b1": _html("new", "k1"), "b2": _html("new too", "k1"), "k1": LAYOUT}
    saved = _hook_save(tmp_path, _widget_notebook(["b1", "b2"], rerun))
    assert saved["metadata"]["widgets"][widget_state.STATE]["state"] == rerun


def test_the_hook_adds_no_widget_state_where_nothing_shows_a_widget(tmp_path: Path) -> None:
    build.write(_widget_notebook([], None), tmp_path / "lesson.ipynb")
    assert "widgets" not in _hook_save(tmp_path, _widget_notebook([], {}))["metadata"]
    # outputs cleared: the old state is not carried over
    build.write(_widget_notebook(["a1", "a2"], COMMITTED), tmp_path / "lesson.ipynb")
    assert "widgets" not in _hook_save(tmp_path, _widget_notebook([], {}))["metadata"]


def test_the_hook_reads_nothing_outside_the_root_and_leaves_other_saves_alone(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    build.write(_widget_notebook(["a1", "a2"], COMMITTED), tmp_path / "lesson.ipynb")
    empty = json.loads(nbformat.writes(_widget_notebook(["a1", "a2"], {})))
    for path in ("../lesson.ipynb", "/../lesson.ipynb", "missing.ipynb"):
        model = {"type": "notebook", "content": json.loads(json.dumps(empty))}
        widget_state.pre_save(model=model, path=path, contents_manager=_Manager(root))
        assert model["content"] == empty, path
    (root / "broken.ipynb").write_text("{not json", "utf-8")
    model = {"type": "notebook", "content": json.loads(json.dumps(empty))}
    widget_state.pre_save(model=model, path="broken.ipynb", contents_manager=_Manager(root))
    assert model["content"] == empty
    text = {"type": "file", "format": "text", "content": "hello"}
    widget_state.pre_save(model=text, path="broken.ipynb", contents_manager=_Manager(root))
    assert text["content"] == "hello"


def test_setup_installs_the_hook_for_this_virtualenvs_jupyter(tmp_path: Path) -> None:
    from traitlets.config import Config

    written = lab.setup(tmp_path)
    config = lab.server_config_path(tmp_path)
    assert config in written and lab.setup(tmp_path) == []  # a second run writes nothing
    assert config == tmp_path / "etc" / "jupyter" / "jupyter_server_config.py"
    namespace: dict = {"c": Config()}
    exec(compile(config.read_text("utf-8"), str(config), "exec"), namespace)
    hook = namespace["c"].ContentsManager.pre_save_hook
    assert hook.__name__ == "pre_save" and hook.__code__.co_filename == str(lab.HOOK)
    # a configuration that is someone else's is not overwritten
    config.write_text("c.ServerApp.port = 9999\n", "utf-8")
    with pytest.raises(SystemExit, match="not written by `make install`"):
        lab.setup(tmp_path)
    assert config.read_text("utf-8") == "c.ServerApp.port = 9999\n"


def test_jupyterlab_serves_lab_and_saves_widget_state(server: Server) -> None:
    status, page = server.get("/lab")
    assert status == 200 and "JupyterLab" in page
    status, body = server.get("/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin")
    assert status == 200
    settings = json.loads(body)
    # the overrides file turns the default (false in jupyterlab-manager) on
    assert settings["schema"]["properties"]["saveState"]["default"] is True
    assert settings["settings"].get("saveState", True) is True
    status, body = server.get("/api/kernelspecs")
    names = set(json.loads(body)["kernelspecs"])
    assert {"federated-en", "federated-hi"} <= names


# ---- in a browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    try:
        return browser.ensure_browser()
    except browser.Unavailable as error:
        if shutil.which("apt-get") is None:
            pytest.skip(f"no Chromium on this machine: {error}")
        pytest.fail(str(error))


def _committed_like(folder: Path, locale: str) -> Path:
    """A small lesson made and executed by the tooling, as `make translate` commits one."""
    notebook = nbformat.v4.new_notebook(metadata=build.notebook_metadata(LESSON, locale))
    notebook.cells.append(nbformat.v4.new_markdown_cell("# Widgets", id=build.cell_id(0)))
    notebook.cells.append(nbformat.v4.new_code_cell("print('hello')", id=build.cell_id(1)))
    notebook.cells.append(nbformat.v4.new_code_cell(WIDGET_CELL, id=build.cell_id(2)))
    path = folder / locale / f"{LESSON.slug}.ipynb"
    result = execute(notebook, path, path.parent)
    NotebookNotary().sign(result)  # as `make lab` does with `jupyter trust`
    build.write(result, path)
    return path


NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
KERNEL_IDLE = (
    "document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)"
    ' .jp-Notebook-ExecutionIndicator[data-status="idle"]\') !== null'
)


def _open(page: browser.Page, server: Server, relative: str) -> None:
    """Open a notebook alone (`?reset`: no other tab restored) and wait for its kernel."""
    page.open(f"{server.url}/lab/tree/{relative}?reset&token={TOKEN}", timeout=90)
    # the kernel is up and idle: JupyterLab has written back whatever it rewrites
    page.wait_for(KERNEL_IDLE, timeout=90)
    page.wait_for(f"document.querySelectorAll('{NOTEBOOK} .jp-Cell').length >= 3", timeout=90)
    page.page.locator(NOTEBOOK).click()  # focus, so that shortcuts go to the notebook


def _save(page: browser.Page, path: Path) -> None:
    """Save, and wait until the write is complete: jupyter_server copies the file to
    `.~name`, rewrites it in place (its mtime changes as the write starts), and deletes
    the copy only once the new content is written and synced."""
    before = path.stat().st_mtime_ns
    copy = path.with_name(".~" + path.name)
    page.page.keyboard.press("Control+s")
    deadline = time.monotonic() + 90
    while path.stat().st_mtime_ns == before or copy.exists():
        assert time.monotonic() < deadline, "JupyterLab did not save the notebook"
        time.sleep(0.2)


def test_opening_and_saving_a_lesson_changes_nothing(server: Server, chromium: str) -> None:
    """The committed kernelspec, language_info and widget state are what JupyterLab writes
    back, also once the widget manager has replaced the state with its kernel's (none)."""
    path = _committed_like(server.root, "hi")
    before = path.read_text("utf-8")
    with browser.launch(chromium) as chrome:
        page = chrome.page(offline=False)
        _open(page, server, f"hi/{path.name}")
        # the saved dashboard is drawn: the widget manager exists and has read the saved
        # state, so from now on every save sends its own state, which has no model
        page.wait_for(
            f"document.querySelector('{NOTEBOOK} .fl-dashboard svg') !== null", timeout=90
        )
        _save(page, path)
    assert path.read_text("utf-8") == before


def test_saved_widgets_show_without_a_broken_link_and_survive_run_and_save(
    server: Server, chromium: str
) -> None:
    path = _committed_like(server.root, "en")
    with browser.launch(chromium) as chrome:
        page = chrome.page(offline=False)
        _open(page, server, f"en/{path.name}")
        # the saved view, drawn from the notebook's widget state: its models are not the
        # new kernel's, so ipywidgets marks them disconnected; we hide that mark
        page.wait_for(
            f"document.querySelector('{NOTEBOOK} .fl-dashboard svg') !== null", timeout=90
        )
        marks = page.evaluate(
            f"Array.from(document.querySelectorAll('{NOTEBOOK} .fl-widget,"
            f" {NOTEBOOK} .fl-widget .jupyter-widgets-disconnected'))"
            ".filter(e => e.classList.contains('jupyter-widgets-disconnected'))"
            ".map(e => getComputedStyle(e, '::before').display)"
        )
        assert marks and set(marks) == {"none"}, marks
        assert "Error displaying widget" not in page.evaluate("document.body.innerText")
        # run every cell (Shift+Enter moves on), then save
        page.page.locator(f"{NOTEBOOK} .jp-Cell").first.click()
        page.page.keyboard.press("Escape")
        for key in ("Shift+Enter", "Shift+Enter", "Control+Enter"):  # no new cell at the end
            page.page.keyboard.press(key)
        # the new run's dashboard is live: its model belongs to the kernel
        page.wait_for(
            f"document.querySelector('{NOTEBOOK} .fl-dashboard:not(.jupyter-widgets-disconnected)"
            " svg') !== null",
            timeout=60,
        )
        page.wait_for(KERNEL_IDLE, timeout=60)
        _save(page, path)
    saved = nbformat.read(path, as_version=4)
    assert [model for _, model in widget_state.shown(saved)], "no widget output was saved"
    assert widget_state.unsaved(saved) == []  # every view's model state is in the file
