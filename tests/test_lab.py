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
import socket
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """JupyterLab as `make lab` starts it, on an empty folder, as whoever runs the tests."""
    root = tmp_path_factory.mktemp("lab")
    state = tmp_path_factory.mktemp("jupyter-state")
    port = _free_port()
    argv = lab.command(
        root,
        f"--port={port} --ServerApp.port_retries=0 --IdentityProvider.token={TOKEN}"
        " --ServerApp.ip=127.0.0.1",
        browser=False,
    )
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
    }
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5).close()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"JupyterLab exited: {process.stderr.read()[-2000:]}")
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
    page.wait_for(f"document.querySelectorAll('{NOTEBOOK} .jp-Cell').length >= 3", timeout=30)
    page.page.locator(NOTEBOOK).click()  # focus, so that shortcuts go to the notebook


def _save(page: browser.Page, path: Path) -> None:
    before = path.stat().st_mtime_ns
    page.page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while path.stat().st_mtime_ns == before:
        assert time.monotonic() < deadline, "JupyterLab did not save the notebook"
        time.sleep(0.2)
    time.sleep(0.5)  # the write is complete once the server answered; be generous


@pytest.mark.xfail(
    strict=False,
    reason="known defect (issue 14, left open): once the kernel has started, JupyterLab's "
    "widget manager saves only the widgets the kernel knows, so saving a lesson that was "
    "opened but not run can write an empty widget state; whether it does depends on timing",
)
def test_opening_and_saving_a_lesson_changes_nothing(server: Server, chromium: str) -> None:
    """The committed kernelspec and language_info are what JupyterLab writes back."""
    path = _committed_like(server.root, "hi")
    before = path.read_text("utf-8")
    with browser.launch(chromium) as chrome:
        page = chrome.page(offline=False)
        _open(page, server, f"hi/{path.name}")
        # wait until the saved widget views are back: saving earlier writes the widget
        # manager's still-empty state (a race in JupyterLab, not a rewrite of the file)
        page.wait_for(f"document.querySelector('{NOTEBOOK} .jupyter-widgets') !== null", timeout=60)
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
        page.wait_for(f"document.querySelector('{NOTEBOOK} .fl-dashboard svg') !== null")
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
