"""Whether a committed notebook's outputs are still what executing it would give.

A notebook's outputs depend on its code (comments aside: only they are translated), on
the `federated` package it imports, on the pinned libraries and on the kernel's
environment. `digest()` hashes exactly these; `translate` records it in the notebook
(`metadata.federated.code`) and executes a notebook again only when it changed, so a
fixed sentence in a template or a catalogue rebuilds the notebooks in seconds and
leaves the outputs as they are.
"""

from __future__ import annotations

import hashlib
import json

from nbformat import NotebookNode

from tools import kernel
from tools.comments import mask
from tools.paths import Project

KEY = "code"


def digest(project: Project, notebook: NotebookNode, locale: str) -> str:
    """`sha256:…` of everything the notebook's outputs depend on."""
    hashed = hashlib.sha256()

    def add(label: str, content: bytes) -> None:
        hashed.update(f"{label}\0{len(content)}\0".encode())
        hashed.update(content)

    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            add(f"cell {index}", mask(cell.source).encode())
    package = project.root / "federated"
    # The package's catalogues in this language too: a Hindi notebook prints the
    # library's Hindi errors (an English one none of them).
    catalogues = sorted((package / "locales" / locale).rglob("*.po"))
    for path in [*sorted(package.rglob("*.py")), *catalogues]:
        add(project.relative(path), path.read_bytes())
    requirements = project.root / "requirements.txt"
    if requirements.exists():
        add("requirements.txt", requirements.read_bytes())
    add("kernel", json.dumps(kernel.spec(locale)["env"], sort_keys=True).encode())
    return "sha256:" + hashed.hexdigest()[:32]


def recorded(notebook: NotebookNode) -> str | None:
    value = notebook.metadata.get("federated", {}).get(KEY)
    return value if isinstance(value, str) else None


def record(notebook: NotebookNode, value: str) -> NotebookNode:
    notebook.metadata.setdefault("federated", {})[KEY] = value
    return notebook


def executed(notebook: NotebookNode) -> bool:
    return all(
        cell.get("execution_count") is not None
        for cell in notebook.cells
        if cell.cell_type == "code"
    )
