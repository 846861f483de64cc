"""Whether a committed notebook is what the build would write now.

Sources, cell types, cell ids and metadata are compared; outputs are not (they are
checked by nbval and the notebook tests), and neither is the saved widget state
(`metadata.widgets`, which only execution makes). A committed notebook must also have
been executed: every code cell has an execution count, and every widget it shows has
its state saved.
"""

from __future__ import annotations

from nbformat import NotebookNode

from tools import widget_state

_SHOWN = 5


def differences(expected: NotebookNode, actual: NotebookNode) -> list[str]:
    """Human-readable reasons why `actual` is stale; empty when it is up to date."""
    found = []
    if actual.metadata.get("kernelspec") != expected.metadata.get("kernelspec"):
        found.append("notebook metadata 'kernelspec' differs")
    # `federated.code` records what the outputs were made with (tools/freshness.py),
    # which the build cannot know: only the lesson and the language are compared
    if _identity(actual) != _identity(expected):
        found.append("notebook metadata 'federated' differs")
    language = actual.metadata.get("language_info", {}).get("name")
    if language != expected.metadata["language_info"]["name"]:
        found.append("notebook metadata 'language_info' is not python")
    if len(actual.cells) != len(expected.cells):
        found.append(f"has {len(actual.cells)} cells, the build makes {len(expected.cells)}")
    cells = []
    for index, (want, have) in enumerate(zip(expected.cells, actual.cells, strict=False)):
        what = _cell_difference(want, have)
        if what:
            cells.append(f"cell {index} {what}")
    found.extend(cells[:_SHOWN])
    if len(cells) > _SHOWN:
        found.append(f"and {len(cells) - _SHOWN} more cells differ")
    return found


def _identity(notebook: NotebookNode) -> tuple:
    recorded = notebook.metadata.get("federated", {})
    return recorded.get("lesson"), recorded.get("locale")


def _cell_difference(want: NotebookNode, have: NotebookNode) -> str | None:
    if want.cell_type != have.cell_type:
        return f"is {have.cell_type}, should be {want.cell_type}"
    if want.source != have.source:
        return f"source differs (expected {_first_difference(want.source, have.source)!r})"
    if dict(want.metadata) != dict(have.metadata):
        return "metadata differs"
    if want.get("id") != have.get("id"):
        return f"id is {have.get('id')!r}, should be {want.get('id')!r}"
    return None


def _first_difference(want: str, have: str) -> str:
    for wanted, had in zip(want.split("\n"), have.split("\n"), strict=False):
        if wanted != had:
            return wanted[:60]
    return want.split("\n")[-1][:60]


def unexecuted(notebook: NotebookNode) -> list[int]:
    """Indexes of code cells that have no execution count (the notebook was not run)."""
    return [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and cell.get("execution_count") is None
    ]


def unsaved_widgets(notebook: NotebookNode) -> list[int]:
    """Indexes of code cells showing a widget with no saved state (it would not render)."""
    return widget_state.unsaved(notebook)
