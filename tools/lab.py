"""`make lab`: JupyterLab on the lessons, set up so that what a learner sees is committed.

`setup()` (run by `make install`) installs the project's kernels (tools/kernel.py),
turns on the widget manager's "save widget state", so a lesson that was run and saved
still shows its dashboards after the kernel is gone, and turns off the news prompt. The
settings are written to the virtualenv's `share/jupyter/lab/settings/overrides.json`,
i.e. only for this project's JupyterLab, and other keys in that file are kept.

The widget manager saves only the widgets its kernel made, so on its own it would save a
lesson that was opened but not run with no widget state at all. `setup()` therefore also
writes the virtualenv's `etc/jupyter/jupyter_server_config.py`, which installs
`tools.widget_state.pre_save` as the server's pre-save hook: the saved state of what the
notebook still shows is kept (tools/widget_state.py). It is loaded by its path, so a
`jupyter lab` started from any folder with this virtualenv has it too.

`command()` is the JupyterLab command line: `--allow-root` when run as root (Docker,
cloud VMs), `--no-browser` when this machine has no browser to open, and the extra
arguments a user passes (`make lab LAB_ARGS="--ip=0.0.0.0 --port=8899"`).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import webbrowser
from pathlib import Path

from tools import kernel

SETTINGS: dict[str, dict[str, object]] = {
    # keep widget state in the saved notebook, so a lesson run and saved still shows its
    # dashboards after the kernel is gone
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
    # no "get Jupyter news?" prompt over the lesson, and no request to the web for it
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false"},
}


#: the first line of the server configuration `setup()` writes (and may rewrite)
MARKER = "# Written by `make install` (python -m tools setup-lab, tools/lab.py)."
HOOK = Path(__file__).resolve().parent / "widget_state.py"


def server_config_path(prefix: Path | None = None) -> Path:
    return (prefix or Path(sys.prefix)) / "etc" / "jupyter" / "jupyter_server_config.py"


def server_config(hook: Path = HOOK) -> str:
    """The server configuration: the pre-save hook that keeps saved widget state."""
    return f"""{MARKER}
# JupyterLab from this virtualenv keeps a lesson's saved widget state when it saves the
# lesson (tools/widget_state.py says why). The hook is loaded by its path, so that
# `jupyter lab` works from any folder; without the checkout, nothing is installed.
import importlib.util
from pathlib import Path

_hook = Path({str(hook)!r})
if _hook.is_file():
    _spec = importlib.util.spec_from_file_location("federated_widget_state", _hook)
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    c.ContentsManager.pre_save_hook = _module.pre_save  # noqa: F821 (set by Jupyter)
"""


def overrides_path(prefix: Path | None = None) -> Path:
    settings = (prefix or Path(sys.prefix)) / "share" / "jupyter" / "lab" / "settings"
    return settings / "overrides.json"


def setup(prefix: Path | None = None) -> list[Path]:
    """Install the kernels, the settings and the server configuration; return the files
    written. A server configuration that is not ours stops it before anything is written."""
    config = server_config_path(prefix)
    ours = not config.exists() or config.read_text(encoding="utf-8").startswith(MARKER)
    if not ours:
        raise SystemExit(
            f"{config} exists and was not written by `make install`; move it away (or merge"
            f" it with the text of tools.lab.server_config()) and run `make install` again"
        )
    written = kernel.install(prefix)
    if not config.exists() or config.read_text(encoding="utf-8") != server_config():
        config.parent.mkdir(parents=True, exist_ok=True)
        # written aside, then renamed: a server starting now reads the old or the new one
        scratch = config.with_name(f".{config.name}.{os.getpid()}")
        scratch.write_text(server_config(), encoding="utf-8")
        os.replace(scratch, config)
        written.append(config)
    path = overrides_path(prefix)
    current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    wanted = {**current, **{key: {**current.get(key, {}), **SETTINGS[key]} for key in SETTINGS}}
    if wanted != current:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def has_browser() -> bool:
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def command(
    notebooks: Path, extra: str = "", *, root: bool | None = None, browser: bool | None = None
) -> list[str]:
    """The argv that starts JupyterLab on `notebooks`; `extra` is split like a shell would."""
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={notebooks}"]
    if is_root() if root is None else root:
        argv.append("--allow-root")
    if not (has_browser() if browser is None else browser):
        argv.append("--no-browser")
    return argv + shlex.split(extra)


def notice(argv: list[str]) -> str | None:
    """What to tell a user whose JupyterLab will not open a browser by itself."""
    if "--no-browser" not in argv:
        return None
    return (
        "No web browser was found on this machine. Open the address that JupyterLab\n"
        "prints below (http://127.0.0.1:8888/lab?token=...) in a browser on this\n"
        "machine; in Docker or on a remote machine, start with LAB_ARGS=--ip=0.0.0.0\n"
        "and publish or forward the port."
    )


def main(notebooks: Path, extra: str) -> int:
    """Replace this process with JupyterLab (so Ctrl-C stops it as usual)."""
    argv = command(notebooks, extra)
    message = notice(argv)
    if message:
        print(message, flush=True)
    os.execv(argv[0], argv)
    return 0  # not reached
