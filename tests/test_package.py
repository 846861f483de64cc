"""The package as a learner installs it: a wheel, in a virtualenv far from this checkout.

The wheel is built from the checkout and installed into a new virtualenv in tmp_path
without its dependencies; those are taken from the project's virtualenv through a
`.pth` line (torch is large and must not be downloaded again). A `.pth` line makes a
folder importable but does not run the `.pth` files inside it, so the checkout's
editable install of `federated` stays out and the wheel's copy is the one imported.
Lesson 2's code then runs there with the widgets, and an error, in Hindi, chosen by
`FEDERATED_LANG`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tools import build
from tools.paths import DEFAULT_ROOT, Project
from tools.sources import load

pytestmark = pytest.mark.notebook

PROJECT = Project(DEFAULT_ROOT)
DISTRIBUTION = "federated_classroom"

#: run in the new virtualenv after lesson 2's code: which `federated` was imported, and
#: every text the lesson's widgets would show
REPORT = """
import json, federated, ipywidgets

def texts(widget, seen):
    if id(widget) in seen:
        return
    seen.add(id(widget))
    for name in ("value", "description", "placeholder"):
        value = getattr(widget, name, None)
        if isinstance(value, str) and value:
            yield value
    for option in getattr(widget, "options", ()) or ():
        yield str(option[0] if isinstance(option, tuple) else option)
    for child in getattr(widget, "children", ()) or ():
        yield from texts(child, seen)

shown = []
for name in ("dashboard", "playground"):
    shown += list(texts(globals()[name], set()))
import torch
owner = federated.VirtualWorker(federated.TorchHook(torch), id="report_owner")
try:
    (owner.load(torch.ones(2), private=True) * 2).get()
    error = ""
except federated.errors.PrivateDataError as refused:
    error = str(refused)
report = {"federated": federated.__file__, "texts": shown, "error": error}
print("REPORT " + json.dumps(report))
"""


def _lesson_code(number: str) -> str:
    lesson = PROJECT.find_lesson(number)
    sources = load(PROJECT, lesson)
    notebook = build.render(sources.template, lesson, "hi", sources.catalog("hi"))
    cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    # IPython magics have no meaning outside a kernel
    return "\n\n".join(
        "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("%"))
        for source in cells
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once for both tests: neither changes it, and pip takes seconds per build."""
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_ships_catalogues_dependencies_and_the_worker_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    assert "federated/locales/hi/LC_MESSAGES/widgets.po" in names
    assert "federated/locales/hi/LC_MESSAGES/errors.po" in names
    assert "federated/widgets/i18n.py" in names
    assert not any(n.startswith(("tools/", "tests/", "notebooks/")) for n in names)
    requires = [
        line.split(":", 1)[1].strip()
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert any(r.lower().startswith("babel") for r in requires)
    assert any(r.startswith("torch") for r in requires)
    assert any(r.startswith("ipywidgets") and 'extra == "widgets"' in r for r in requires)
    assert "federated-worker = federated.server:main" in entry_points.decode()


def _build_wheel(tmp_path: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(DEFAULT_ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    wheels = list((tmp_path / "dist").glob(f"{DISTRIBUTION}-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_an_installed_wheel_runs_lesson_2_with_hindi_widgets(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    script = tmp_path / "lesson.py"
    script.write_text(_lesson_code("02") + "\n" + REPORT, encoding="utf-8")
    env = {
        "FEDERATED_LANG": "hi",
        "MPLBACKEND": "Agg",
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TQDM_DISABLE": "1",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [str(python), str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("REPORT "))
    report = json.loads(line.removeprefix("REPORT "))
    assert Path(report["federated"]).is_relative_to(venv), report["federated"]
    shown = "\n".join(report["texts"])
    assert "हर वर्कर का लॉस" in shown  # "Loss per worker", from the shipped catalogue
    assert "Loss per worker" not in shown
    assert "निजी डेटा" in report["error"] and "report_owner" in report["error"]  # errors too
    worker = subprocess.run(
        [str(venv / "bin" / "federated-worker"), "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0 and "--port" in worker.stdout
