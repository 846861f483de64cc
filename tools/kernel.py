"""The project's Jupyter kernels: one per language, installed into the virtualenv.

A lesson names its kernel in its metadata (`federated-en`, `federated-hi`), so JupyterLab,
papermill and nbval all start the same one, with the same environment
(tools/environment.py): one thread, a fixed hash seed, and `FEDERATED_LANG` set to the
notebook's language, which is how the widgets know which labels to show. Because the
notebook's kernelspec is exactly what is installed, opening a lesson in JupyterLab does
not rewrite its metadata.

`make install` calls `install()`; the tooling calls it again before executing, which is
a few small file writes when nothing changed.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

from tools.environment import for_locale
from tools.paths import LOCALES

#: how each language's kernel is shown in JupyterLab's kernel picker
DISPLAY_NAMES = {"en": "federated (Python 3, English)", "hi": "federated (Python 3, हिन्दी)"}
#: ipykernel warns at every start that its local TCP sockets are unencrypted
LOG_LEVEL = "--IPKernelApp.log_level=ERROR"


def name(locale: str) -> str:
    """The kernel a notebook of `locale` names: `federated-hi`."""
    return f"federated-{locale}"


def notebook_kernelspec(locale: str) -> dict[str, str]:
    """`metadata.kernelspec` of a lesson notebook, as JupyterLab writes it back."""
    return {"display_name": DISPLAY_NAMES[locale], "language": "python", "name": name(locale)}


def language_info() -> dict:
    """What ipykernel answers about its language (the version is this interpreter's)."""
    return {
        "codemirror_mode": {"name": "ipython", "version": 3},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "name": "python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
        "version": platform.python_version(),
    }


def spec(locale: str) -> dict:
    """The kernel.json: "python" is replaced by jupyter_client with the interpreter that
    starts the kernel, i.e. the virtualenv's, wherever the virtualenv is."""
    return {
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}", LOG_LEVEL],
        "display_name": DISPLAY_NAMES[locale],
        "language": "python",
        "env": for_locale(locale),
        "metadata": {"debugger": True},
    }


def kernels_dir(prefix: Path | None = None) -> Path:
    """Where Jupyter run from this environment looks for kernels first."""
    return (prefix or Path(sys.prefix)) / "share" / "jupyter" / "kernels"


def install(prefix: Path | None = None) -> list[Path]:
    """Write every language's kernel.json under `prefix`; return the files written."""
    written = []
    for locale in LOCALES:
        path = kernels_dir(prefix) / name(locale) / "kernel.json"
        content = json.dumps(spec(locale), indent=1, ensure_ascii=False) + "\n"
        if path.exists() and path.read_text(encoding="utf-8") == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        # written aside, then renamed: test workers may install at the same moment
        scratch = path.with_name(f".kernel.json.{os.getpid()}")
        scratch.write_text(content, encoding="utf-8")
        os.replace(scratch, path)
        written.append(path)
    return written
