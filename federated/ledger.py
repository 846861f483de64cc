"""Per-caller quotas on a worker server: how many objects and bytes each caller keeps there.

Without them one caller could fill the server's memory and lock everyone else out.
Objects are charged to the caller whose call made them, with the full size of the memory
they keep alive (a one-element view of a large tensor keeps all of it), and released when
they are freed, fetched or moved. The data owner's own data is not charged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from federated.language import tr
from federated.protocol import QuotaExceededError


def nbytes(obj: Any) -> int:
    """The memory `obj` keeps alive; 0 for a pointer on to another worker."""
    if type(obj) in (torch.Tensor, torch.nn.Parameter):
        return obj.untyped_storage().nbytes()
    return 0


class Ledger:
    """Who made which object, and how much each caller keeps."""

    def __init__(self, max_objects: int, max_bytes: int) -> None:
        self.max_objects, self.max_bytes = max_objects, max_bytes
        self._made_by: dict[int, tuple[str, int]] = {}
        self._used: dict[str, tuple[int, int]] = {}

    def used(self, caller: str) -> tuple[int, int]:
        """(objects, bytes) that `caller` keeps now."""
        return self._used.get(caller, (0, 0))

    def room(self, caller: str) -> int:
        """The bytes `caller` may still add."""
        return self.max_bytes - self.used(caller)[1]

    def charge(
        self,
        caller: str,
        items: Iterable[tuple[int, int]],
        alive: Callable[[int], bool],
        worker: str,
    ) -> None:
        """Charge `caller` for new objects, `(id, bytes)` each, all or none.

        `alive(id)` says whether an object still exists: ids released some other way
        (an object replaced on the worker) are forgotten before refusing.
        """
        items = list(items)
        count, size = self.used(caller)
        count, size = count + len(items), size + sum(b for _, b in items)
        if count > self.max_objects or size > self.max_bytes:
            self._forget_dead(alive)
            count, size = self.used(caller)
            count, size = count + len(items), size + sum(b for _, b in items)
        if count > self.max_objects or size > self.max_bytes:
            raise QuotaExceededError(
                tr(
                    "{worker} keeps at most {max_objects} objects and {limit_mb} MB for each "
                    "caller; this call would leave you {count} objects and {used_mb} MB. "
                    "Nothing was kept: free or fetch what you no longer need (drop its "
                    "pointers) and try again.",
                    worker=worker,
                    max_objects=self.max_objects,
                    limit_mb=format(self.max_bytes / 2**20, ".0f"),
                    count=count,
                    used_mb=format(size / 2**20, ".1f"),
                )
            )
        for obj_id, b in items:
            self._made_by[obj_id] = (caller, b)
        self._used[caller] = (count, size)

    def release(self, obj_id: int) -> None:
        """The object is gone (freed, fetched, moved); its caller gets the room back."""
        entry = self._made_by.pop(obj_id, None)
        if entry is not None:
            caller, b = entry
            count, size = self._used[caller]
            self._used[caller] = (count - 1, size - b)

    def _forget_dead(self, alive: Callable[[int], bool]) -> None:
        for obj_id in [i for i in self._made_by if not alive(i)]:
            self.release(obj_id)
