"""`ObjectStore`: the table of objects a worker holds, by id.

Ids count up from 1 on each store, so printed pointers are the same on every run of a
notebook. The store keeps objects and nothing else: who may see them is the privacy
policy's business, what to compute with them the executor's.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from federated.errors import ObjectNotFoundError
from federated.language import tr


class ObjectStore(dict[int, Any]):
    """Objects by id: a dict whose missing keys raise an error a learner can act on.

    `owner` names the worker in that error. `store[obj_id]` and `lookup(obj_id)` are the
    same thing.
    """

    def __init__(self, owner: str) -> None:
        super().__init__()
        self.owner = owner
        self._last_id = 0

    def __missing__(self, obj_id: int) -> Any:
        raise ObjectNotFoundError(
            tr(
                "{owner} holds no object {obj_id}: it was fetched, moved or freed already. If "
                "the call that did this returned a new pointer or the value in its place, "
                "use that.",
                owner=self.owner,
                obj_id=obj_id,
            )
        )

    def __repr__(self) -> str:
        count = len(self)
        return f"<ObjectStore of {self.owner}: {count} object{'' if count == 1 else 's'}>"

    @property
    def view(self) -> Mapping[int, Any]:
        """Everything held, by id: a read-only, live view."""
        return MappingProxyType(self)

    def register(self, obj: Any) -> int:
        """Keep `obj` as it is (no copy); returns its new id."""
        self._last_id += 1
        self[self._last_id] = obj
        return self._last_id

    def lookup(self, obj_id: int) -> Any:
        """The object `obj_id`, or ObjectNotFoundError saying why it may be gone."""
        return self[obj_id]

    def discard(self, obj_id: int) -> None:
        """Forget `obj_id` if held; missing ids are fine."""
        self.pop(obj_id, None)
