"""What a code cell showed, in the forms the checks and the `run` command compare."""

from __future__ import annotations

import copy

from nbformat import NotebookNode

from tools import widget_state
from tools.comments import mask


def stdout_of(cell: NotebookNode) -> str:
    """Everything a code cell printed to stdout."""
    return "".join(
        output.get("text", "")
        for output in cell.get("outputs", [])
        if output.output_type == "stream" and output.get("name") == "stdout"
    )


def results_of(cell: NotebookNode) -> list[str]:
    """The text/plain form of a cell's results (what `Out[n]:` shows)."""
    return [
        output.data["text/plain"]
        for output in cell.get("outputs", [])
        if output.output_type in ("execute_result", "display_data")
        and "text/plain" in output.get("data", {})
    ]


def errors_of(cell: NotebookNode) -> list[str]:
    """`Name: message` of each error a cell raised."""
    return [
        f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]


def transcript(notebook: NotebookNode) -> str:
    """The notebook's printed output, cell by cell, for a terminal."""
    parts = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        shown = stdout_of(cell).rstrip("\n")
        results = "\n".join(f"Out: {text}" for text in results_of(cell))
        errors = "\n".join(f"!! {text}" for text in errors_of(cell))
        body = "\n".join(part for part in (shown, results, errors) if part)
        if body:
            count = cell.get("execution_count")
            parts.append(f"── [{count if count is not None else ' '}] cell {index} ──\n{body}")
    return "\n\n".join(parts)


def with_outputs(built: NotebookNode, executed: NotebookNode) -> NotebookNode:
    """`built` with the outputs, execution counts and widget state of `executed`.

    The widget state is cut down to what the outputs show and renumbered (see
    `widget_state`), so it is the same on every run.
    """
    result = copy.deepcopy(built)
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    targets = [cell for cell in result.cells if cell.cell_type == "code"]
    if len(code) != len(targets):
        raise ValueError("executed notebook does not have the built notebook's code cells")
    for target, ran in zip(targets, code, strict=True):
        target.outputs = merged_streams(copy.deepcopy(ran.get("outputs", [])))
        target.execution_count = ran.get("execution_count")
    if "widgets" in executed.metadata:
        result.metadata["widgets"] = copy.deepcopy(executed.metadata["widgets"])
    return widget_state.stabilized(result)


def merged_streams(outputs: list) -> list:
    """Consecutive prints to the same stream as one output, as JupyterLab shows and saves
    them: how a kernel happened to flush its output must not change the committed file."""
    merged: list = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (
            output.get("output_type") == "stream"
            and last is not None
            and last.get("output_type") == "stream"
            and last.get("name") == output.get("name")
        ):
            last["text"] = _text(last["text"]) + _text(output["text"])
            continue
        if output.get("output_type") == "stream":
            output["text"] = _text(output["text"])
        merged.append(output)
    return merged


def _text(text: str | list[str]) -> str:
    return text if isinstance(text, str) else "".join(text)


def reuse_outputs(built: NotebookNode, previous: NotebookNode) -> NotebookNode | None:
    """`built` with `previous`'s outputs, if both run the same code; else None.

    Only markdown and comment texts may differ, and neither changes what the code does,
    so a translation fix needs no new execution. `previous` must have been executed.
    """

    def program(notebook: NotebookNode) -> list[str]:
        return [mask(cell.source) for cell in notebook.cells if cell.cell_type == "code"]

    ran = all(
        cell.get("execution_count") is not None
        for cell in previous.cells
        if cell.cell_type == "code"
    )
    if not ran or program(built) != program(previous):
        return None
    return with_outputs(built, previous)
