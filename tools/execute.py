"""Execute a built notebook with papermill and keep only what is worth committing.

The kernel is the one the notebook names, the project's kernel of its language
(tools/kernel.py, which carries the environment that makes outputs repeatable), the one
JupyterLab and nbval start too. It starts in `Project.kernel_cwd(locale)`, i.e.
`notebooks/<locale>/`, where nbval and JupyterLab run the committed notebooks.
Outputs are copied back onto the built notebook, so papermill's and nbclient's metadata
(timings, status, tags, the kernel's language_info) never reach a committed file.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import papermill
from nbformat import NotebookNode
from papermill.exceptions import PapermillExecutionError

from tools import kernel
from tools.outputs import with_outputs


class ExecutionFailed(RuntimeError):
    """A cell raised; `partial` holds the outputs up to and including that cell."""

    def __init__(self, message: str, partial: NotebookNode | None) -> None:
        super().__init__(message)
        self.partial = partial


def execute(
    notebook: NotebookNode, output: Path, cwd: Path, timeout: int | None = None
) -> NotebookNode:
    """Run every cell, write the cleaned result to `output` and return it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    kernel.install()
    try:
        executed = papermill.execute_notebook(
            copy.deepcopy(notebook),
            str(output),
            kernel_name=notebook.metadata["kernelspec"]["name"],
            cwd=str(cwd),
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
            execution_timeout=timeout,
        )
    except PapermillExecutionError as error:
        partial = _read_partial(notebook, output)
        raise ExecutionFailed(
            f"cell {error.cell_index} raised {error.ename}: {error.evalue}", partial
        ) from error
    result = with_outputs(notebook, executed)
    nbformat.write(result, output)
    return result


def _read_partial(built: NotebookNode, output: Path) -> NotebookNode | None:
    """What papermill saved before the error (its banner cells are markdown, so dropped)."""
    if not output.exists():
        return None
    saved = nbformat.read(output, as_version=4)
    try:
        partial = with_outputs(built, saved)
    except ValueError:
        return None
    nbformat.write(partial, output)
    return partial
