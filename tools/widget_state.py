"""Saved widget state: what lets a committed notebook show its widgets without a kernel.

nbclient (under papermill) records the last state of every widget the kernel made in the
notebook's `metadata.widgets`, and each widget output names its model by a random id.
Before a notebook is written, `stabilized` keeps only the models an output shows and the
ones they refer to (layouts, styles, children), and renames them `000…001`, `000…002`, …
in the order the outputs reach them. Executing an unchanged lesson again then writes the
same file, and nothing of a widget the lesson threw away is left in it.

nbval and the notebook tests compare a widget output by its text/plain form only (nbval
skips the view data because of the random ids), so the renaming changes no comparison.

JupyterLab's widget manager, with "save widget state" on, replaces `metadata.widgets` on
every save with the models *its kernel* made (`get_state_sync` keeps only models with a
live comm). Models drawn from the saved state have no comm, so saving a lesson that was
opened but not run (or autosaving it) wrote an empty state, and saving after running only
some cells dropped the models of the outputs not run again. `pre_save`, the server's
pre-save hook (installed by `tools setup-lab`), puts back from the file on disk the models
that the outputs being saved still show and the new state lacks; the new state's own
models always win, so what a learner ran is saved as it is.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nbformat import NotebookNode, from_dict

STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"
REFERENCE = "IPY_MODEL_"


def new_id(number: int) -> str:
    """The n-th model of a notebook (a fresh kernel's uuid4 ids never look like this)."""
    return f"{number:032x}"


def models(notebook: NotebookNode) -> dict[str, Any]:
    """The saved models by id (empty when the notebook has no widget state)."""
    return dict(notebook.metadata.get("widgets", {}).get(STATE, {}).get("state", {}))


def shown(notebook: NotebookNode) -> Iterator[tuple[int, str]]:
    """(cell index, model id) of every widget output, in notebook order."""
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            view = output.get("data", {}).get(VIEW)
            if view and "model_id" in view:
                yield index, view["model_id"]


def _references(value: Any, known: Mapping[str, Any]) -> Iterator[str]:
    """Model ids that a model's state refers to, in a fixed order."""
    if isinstance(value, str):
        name = value.removeprefix(REFERENCE)
        if value.startswith(REFERENCE) and name in known:
            yield name
    elif isinstance(value, dict):
        if isinstance(value.get("model_id"), str) and value["model_id"] in known:
            yield value["model_id"]  # a widget shown inside an Output widget
        for key in sorted(value):
            yield from _references(value[key], known)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item, known)


def reachable(notebook: NotebookNode, known: Mapping[str, Any] | None = None) -> list[str]:
    """The ids the outputs need, depth first from each output in order, among `known`
    (default: the notebook's own saved models)."""
    known = models(notebook) if known is None else known
    order: list[str] = []
    seen: set[str] = set()
    stack = [model for _, model in reversed(list(shown(notebook))) if model in known]
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        order.append(model)
        stack.extend(reversed(list(_references(known[model].get("state", {}), known))))
    return order


def _renamed(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        if value.startswith(REFERENCE) and value.removeprefix(REFERENCE) in names:
            return REFERENCE + names[value.removeprefix(REFERENCE)]
        return value
    if isinstance(value, dict):
        result = {key: _renamed(item, names) for key, item in value.items()}
        if isinstance(value.get("model_id"), str) and value["model_id"] in names:
            result["model_id"] = names[value["model_id"]]
        return result
    if isinstance(value, list):
        return [_renamed(item, names) for item in value]
    return value


def stabilized(notebook: NotebookNode) -> NotebookNode:
    """A copy with only the shown models' state, renamed in the order they are shown."""
    result = copy.deepcopy(notebook)
    known = models(notebook)
    names = {model: new_id(number) for number, model in enumerate(reachable(notebook), start=1)}
    result.metadata.pop("widgets", None)
    for cell in result.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            view = output.get("data", {}).get(VIEW)
            if view and view.get("model_id") in names:
                view["model_id"] = names[view["model_id"]]
    if names:
        saved = {names[model]: _renamed(known[model], names) for model in names}
        result.metadata["widgets"] = from_dict(
            {STATE: {"state": saved, "version_major": 2, "version_minor": 0}}
        )
    return result


def unsaved(notebook: NotebookNode) -> list[int]:
    """Indexes of code cells showing a widget whose state the notebook does not have."""
    known = models(notebook)
    return sorted({index for index, model in shown(notebook) if model not in known})


def kept(notebook: NotebookNode, on_disk: NotebookNode) -> dict[str, Any] | None:
    """The `metadata.widgets` to save: the new state, plus the models on disk that the
    notebook's outputs still show (and the ones those refer to) and the new state lacks;
    None when no model is left at all (then no widget metadata is saved)."""
    new, old = models(notebook), models(on_disk)
    carried = {
        model: old[model]
        for model in reachable(notebook, {**old, **new})
        if model not in new and model in old
    }
    if not new and not carried:
        return None
    # the version numbers come with the models: from disk when all of them do, so a
    # lesson opened and saved unchanged is written back byte for byte
    source = notebook if new else on_disk
    envelope = {key: value for key, value in source.metadata.widgets[STATE].items()}
    return {STATE: {**envelope, "state": {**carried, **new}}}


def pre_save(model: dict[str, Any], path: str, contents_manager: Any, **_: Any) -> None:
    """jupyter_server's pre-save hook: keep the saved widget state (see the module text).

    Only notebooks are touched, only state from the same file is carried over, and a file
    that cannot be read (new, outside the root, not a notebook) leaves the save as it is.
    """
    content = model.get("content")
    if model.get("type") != "notebook" or not isinstance(content, dict):
        return
    root = Path(contents_manager.root_dir).resolve()
    target = (root / path.strip("/")).resolve()
    if root not in target.parents or not target.is_file():
        return
    try:
        on_disk = from_dict(json.loads(target.read_text(encoding="utf-8")))
        notebook = from_dict(content)
        widgets = kept(notebook, on_disk)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return
    metadata = content.setdefault("metadata", {})
    if widgets is None:
        metadata.pop("widgets", None)
    else:
        metadata["widgets"] = widgets
