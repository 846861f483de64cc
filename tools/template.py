"""Read a lesson template (jupytext Markdown) into an nbformat notebook."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jupytext
from nbformat import NotebookNode

#: Cell metadata that only records jupytext's own layout; never copied into a notebook.
JUPYTEXT_CELL_KEYS = frozenset(
    {"cell_marker", "lines_to_next_cell", "lines_to_end_of_cell_marker", "skipline", "noskipline"}
)


@dataclass(frozen=True)
class Template:
    """A template's text (for line numbers) and the cells jupytext reads from it."""

    path: Path
    lines: tuple[str, ...]
    cells: tuple[NotebookNode, ...]
    #: index in `lines` of the first line after the YAML front matter
    body_start: int


def read_template(path: Path) -> Template:
    """Parse with jupytext, dropping the front matter and jupytext's own metadata."""
    text = path.read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="md")
    cells = list(notebook.cells)
    # jupytext keeps front-matter keys it does not know (e.g. `lesson:`) as a raw cell
    if cells and cells[0].cell_type == "raw" and cells[0].source.startswith("---"):
        cells.pop(0)
    for cell in cells:
        for key in JUPYTEXT_CELL_KEYS & cell.metadata.keys():
            del cell.metadata[key]
    lines = tuple(text.splitlines())
    return Template(path=path, lines=lines, cells=tuple(cells), body_start=_body_start(lines))


def _body_start(lines: tuple[str, ...]) -> int:
    if not lines or lines[0].strip() != "---":
        return 0
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return index + 1
    return 0
