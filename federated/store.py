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


class ObjectStore:
    """Objects by id. `owner` names the worker in error messages."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._objects: dict[int, Any] = {}
        self._last_id = 0

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, obj_id: object) -> bool:
        return obj_id in self._objects

    @property
    def view(self) -> Mapping[int, Any]:
        """Everything held, by id: a read-only, live view."""
        return MappingProxyType(self._objects)

    def register(self, obj: Any) -> int:
        """Keep `obj` as it is (no copy); returns its new id."""
        self._last_id += 1
        self._objects[self._last_id] = obj
        return self._last_id

    def lookup(self, obj_id: int) -> Any:
        """The object `obj_id`, or ObjectNotFoundError saying why it may be gone."""
        try:
            return self._objects[obj_id]
        except (KeyError, TypeError):
            raise ObjectNotFoundError(
                f"{self.owner} holds no object {obj_id}: it was fetched, moved or freed "
                f"already. Use the pointer that call returned."
            ) from None

    def get(self, obj_id: int) -> Any:
        """The object `obj_id`, or None."""
        return self._objects.get(obj_id)

    def replace(self, obj_id: int, obj: Any) -> None:
        """Hold `obj` under an id already in use."""
        self.lookup(obj_id)
        self._objects[obj_id] = obj

    def pop(self, obj_id: int) -> Any:
        """Take the object out of the store and return it."""
        obj = self.lookup(obj_id)
        del self._objects[obj_id]
        return obj

    def discard(self, obj_id: int) -> None:
        """Forget `obj_id` if held; missing ids are fine."""
        self._objects.pop(obj_id, None)

    def clear(self) -> None:
        self._objects.clear()
