"""`po-check`: every catalogue must be valid for GNU gettext, not only for Babel.

Translators may open a catalogue with gettext's tools or an editor built on them
(Poedit, Lokalize); those reject what `msgfmt --check` rejects. Babel reads more than
gettext does, so this runs the real `msgfmt` (Debian's `gettext`, installed by
`make system-packages`) on each file, writing nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tools.paths import Project


class Missing(RuntimeError):
    """msgfmt is not installed."""


def catalogues(project: Project) -> list[Path]:
    """Every PO file translators edit, and the copies shipped in the package."""
    found = sorted((project.root / "locales").glob("*/LC_MESSAGES/*.po"))
    return found + sorted(project.shipped_dir.glob("*/LC_MESSAGES/*.po"))


def problems(paths: list[Path], project: Project) -> list[str]:
    """msgfmt's complaints, one `file:line: message` each; empty when all are valid."""
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        raise Missing("msgfmt not found: install GNU gettext (`make system-packages`)")
    found = []
    for path in paths:
        done = subprocess.run(
            [msgfmt, "--check", "--output-file=/dev/null", str(path)],
            capture_output=True,
            text=True,
            check=False,
            cwd=project.root,
        )
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            found += lines or [f"{project.relative(path)}: msgfmt exited {done.returncode}"]
    return found
