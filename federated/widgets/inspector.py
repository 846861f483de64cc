"""`WorkerInspector`: what each worker holds, as a table that refreshes.

    WorkerInspector([bob, alice])

A worker's `objects` is the one place that shows whether data stayed where it belongs:
that bob still holds his rows and nothing else, that the aggregator forgot the copies.
The inspector reads it (id, kind, shape, dtype, private or not, the owner's tags) without
changing anything, and `refresh()` or its button reads it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import ipywidgets as widgets
import torch
from torch._C import DisableTorchFunctionSubclass

from federated.pointer import PointerTensor
from federated.remote import RemoteObject
from federated.widgets.i18n import Labels
from federated.widgets.style import STYLE, mark


@dataclass(frozen=True)
class Held:
    """One object on a worker, as the inspector shows it."""

    worker: str
    id: int
    kind: str  # "tensor", "parameter", "pointer" or a type name
    points_to: str | None  # "alice:3" for a pointer held by this worker
    shape: tuple[int, ...] | None
    dtype: str | None  # "float32", without "torch."
    private: bool
    tags: tuple[str, ...]


def describe(worker: Any, obj_id: int, obj: Any) -> Held:
    """What the inspector says about one object; it reads metadata only, never values."""
    if isinstance(obj, RemoteObject):  # a worker in another process lists only metadata
        return Held(
            worker=worker.id,
            id=obj_id,
            kind="pointer" if obj.pointer else "tensor",
            points_to=None,
            shape=tuple(obj.shape),
            dtype=str(obj.dtype).removeprefix("torch."),
            private=obj.private,
            tags=(),
        )
    shape = dtype = points_to = None
    if isinstance(obj, torch.Tensor):
        with DisableTorchFunctionSubclass():  # a held pointer answers from its metadata
            shape, dtype = tuple(obj.shape), str(obj.dtype).removeprefix("torch.")
    if isinstance(obj, PointerTensor):
        kind = "pointer"
        points_to = f"{getattr(obj.location, 'id', obj.location)}:{obj.id_at_location}"
    elif isinstance(obj, torch.nn.Parameter):
        kind = "parameter"
    elif isinstance(obj, torch.Tensor):
        kind = "tensor"
    else:
        kind = type(obj).__name__
    loaded = worker.describe(obj_id) if hasattr(worker, "describe") else None
    return Held(
        worker=worker.id,
        id=obj_id,
        kind=kind,
        points_to=points_to,
        shape=shape,
        dtype=dtype,
        private=worker.is_private(obj_id),
        tags=loaded.tags if loaded is not None else (),
    )


def holdings(worker: Any) -> list[Held]:
    """Every object `worker` holds, by id (one request for a worker in another process)."""
    return [describe(worker, key, obj) for key, obj in sorted(dict(worker.objects).items())]


_CELL = 'style="padding:2px 10px;text-align:left;border-bottom:1px solid #ddd"'


class WorkerInspector(widgets.VBox):
    """A table per worker of what it holds; `refresh()` (or the button) reads it again."""

    def __init__(self, workers: Sequence[Any], lang: str | None = None) -> None:
        self.workers = list(workers)
        self.t = Labels(lang)
        title = self.t.gettext("What each worker holds")
        title = widgets.HTML(f'{STYLE}<b class="fl-title">{escape(title)}</b>')
        # no icon: its font is not there when a notebook is exported to HTML
        self._button = widgets.Button(description=self.t.gettext("Refresh"))
        self._button.on_click(lambda _button: self.refresh())
        self._table = widgets.HTML()
        super().__init__([widgets.HBox([title, self._button]), self._table])
        mark(self, "fl-inspector")
        self.refresh()

    @property
    def rows(self) -> list[Held]:
        """What the table shows: every object of every worker, as of the last refresh."""
        return list(self._rows)

    def refresh(self) -> None:
        self._rows = [held for worker in self.workers for held in holdings(worker)]
        self._table.value = self._html()

    def _html(self) -> str:
        t = self.t
        header = [
            t.gettext("worker"),
            # TRANSLATORS: column: the object's number on its worker
            t.gettext("id"),
            # TRANSLATORS: column: tensor, parameter or pointer
            t.gettext("kind"),
            t.gettext("shape"),
            # TRANSLATORS: column: the tensor's data type, such as float32 or int64
            t.gettext("dtype"),
            # TRANSLATORS: column: whether the data may not leave its worker
            t.gettext("private"),
            # TRANSLATORS: column: the search tags its owner gave the data
            t.gettext("tags"),
        ]
        kinds = {
            "tensor": t.gettext("tensor"),
            "parameter": t.gettext("parameter"),
            "pointer": t.gettext("pointer"),
        }
        yes, no = t.gettext("yes"), t.gettext("no")
        lines = ["<tr>" + "".join(f"<th {_CELL}>{escape(h)}</th>" for h in header) + "</tr>"]
        for worker in self.workers:
            rows = [row for row in self._rows if row.worker == worker.id]
            if not rows:
                # TRANSLATORS: in the table, for a worker that holds no object
                nothing = escape(t.gettext("holds nothing"))
                lines.append(
                    f"<tr><td {_CELL}><code>{escape(worker.id)}</code></td>"
                    f'<td {_CELL} colspan="6"><i>{nothing}</i></td></tr>'
                )
            for row in rows:
                kind = kinds.get(row.kind, row.kind)
                if row.points_to:
                    kind += f" → <code>{escape(row.points_to)}</code>"
                cells = [
                    f"<code>{escape(row.worker)}</code>",
                    str(row.id),
                    kind,
                    "–" if row.shape is None else f"<code>{escape(str(row.shape))}</code>",
                    "–" if row.dtype is None else f"<code>{escape(row.dtype)}</code>",
                    f"<b>{escape(yes)}</b>" if row.private else escape(no),
                    escape(", ".join(row.tags)),
                ]
                lines.append("<tr>" + "".join(f"<td {_CELL}>{c}</td>" for c in cells) + "</tr>")
        return (
            '<table class="fl-holdings" style="border-collapse:collapse;line-height:1.5">'
            + "".join(lines)
            + "</table>"
        )

    def __repr__(self) -> str:
        return f"WorkerInspector(workers={[w.id for w in self.workers]!r})"
