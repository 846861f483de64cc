"""Render a lesson's notebook for one language, without executing it.

The output depends only on the template and the catalogue: cell ids come from the cell
index and the metadata is fixed, so building twice gives the same file.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from babel.messages.catalog import Catalog
from nbformat import NotebookNode

from tools import catalog as catalogs
from tools import convergence, kernel, printed
from tools.messages import translated_source
from tools.paths import SOURCE_LOCALE, Lesson
from tools.template import Template


def notebook_metadata(lesson: Lesson, locale: str) -> dict:
    """The project kernel of the notebook's language, and `language_info` as the kernel
    reports it, so that JupyterLab, which writes both back on opening, changes nothing."""
    return {
        "kernelspec": kernel.notebook_kernelspec(locale),
        "language_info": kernel.language_info(),
        "federated": {"lesson": lesson.number, "locale": locale},
    }


def cell_id(index: int) -> str:
    return f"cell-{index:03d}"


def render(
    template: Template, lesson: Lesson, locale: str, catalog: Catalog | None = None
) -> NotebookNode:
    """The notebook a learner opens: English as written, or each message translated.

    A missing or fuzzy translation falls back to the English text (i18n-check reports it).
    A convergence pattern that reads printed text reads its translation
    (`convergence.localize`).
    """
    lookup = catalogs.lookup(None if locale == SOURCE_LOCALE else catalog)
    notebook = nbformat.v4.new_notebook(metadata=notebook_metadata(lesson, locale))
    for index, cell in enumerate(template.cells):
        source = translated_source(cell, lookup)
        metadata = copy.deepcopy(dict(cell.metadata))
        if cell.cell_type == "code" and convergence.KEY in metadata:
            metadata[convergence.KEY] = convergence.localize(
                metadata[convergence.KEY],
                cell.source,
                lambda text: lookup(text, printed.CONTEXT),
                _code_before(template, index),
            )
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(source, metadata=metadata)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(source, metadata=metadata)
        else:
            new = nbformat.v4.new_raw_cell(source, metadata=metadata)
        new.id = cell_id(index)
        notebook.cells.append(new)
    nbformat.validate(notebook)
    return notebook


def _code_before(template: Template, index: int) -> list[str]:
    """The code cells before cell `index`, nearest first (where a called function prints)."""
    cells = template.cells[:index]
    return [cell.source for cell in reversed(cells) if cell.cell_type == "code"]


def write(notebook: NotebookNode, path: Path) -> bool:
    """Write the notebook if its content changed; True when the file was written."""
    content = nbformat.writes(notebook)
    if not content.endswith("\n"):
        content += "\n"
    if path.exists() and path.read_text(encoding="utf-8") == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return True
