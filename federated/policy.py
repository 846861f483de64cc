"""`PrivacyPolicy`: what may leave a worker, decided in one place.

Every worker owns one policy (`worker.policy`). The worker tells it about data the owner
loads, about every computation (before and after it runs), and asks it before any object
leaves: `fetch`, `move` and `copy` out all go through `check_leave`. The rule today: raw
private data and its trivial copies (views, slices, `x + 0`, anything at least as large
as the private input) stay; smaller results, such as a loss or a trained model, may go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from federated.errors import BudgetExceededError, PrivateDataError
from federated.store import ObjectStore

# Ops whose result holds the input's values as they are, only rearranged or selected.
COPYING = frozenset({
    "clone", "detach", "detach_", "view", "view_as", "reshape", "reshape_as", "flatten",
    "ravel", "squeeze", "unsqueeze", "permute", "transpose", "t", "T", "mT", "movedim",
    "contiguous", "expand", "expand_as", "repeat", "flip", "roll", "__getitem__", "select",
    "narrow", "index_select", "gather", "take", "masked_select", "chunk", "split",
    "tensor_split", "unbind", "cat", "concat", "concatenate", "stack", "hstack", "vstack",
    "to", "type", "float", "double", "half", "bfloat16", "long", "int", "short", "char",
    "byte", "bool", "data", "unfold", "diagonal", "tril", "triu", "sort", "topk",
})

_DESCRIPTOR = type(torch.Tensor.grad)
EXITS = ("model", "dp")  # the named ways out an object can be released through


def func_name(func: Callable[..., Any]) -> str:
    """`add` for torch.add and Tensor.add, `grad` for the gradient property."""
    owner = getattr(func, "__self__", None)
    if isinstance(owner, _DESCRIPTOR):  # a tensor attribute's __get__ or __set__
        return str(owner.__name__)
    return str(getattr(func, "__name__", repr(func)))


class PrivacyPolicy:
    """The privacy rules of one worker; `store` is that worker's object table."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._private: set[int] = set()  # raw private data and its trivial copies
        self._budgets: dict[int, float] = {}  # epsilon left per loaded dataset

    @property
    def active(self) -> bool:
        """Whether anything here is private: if not, `before_call`/`after_call` have
        nothing to do and the executor skips them."""
        return bool(self._private)

    def is_private(self, obj_id: int) -> bool:
        return obj_id in self._private

    # ---- data the owner loads --------------------------------------------------------------

    def on_load(self, obj_id: int, *, private: bool, epsilon: float | None,
                model_exit: bool) -> None:
        """The owner placed `obj_id` here; `epsilon` is its differential-privacy budget."""
        if private:
            self._private.add(obj_id)
        if epsilon is not None:
            self._budgets[obj_id] = float(epsilon)

    # ---- computation -----------------------------------------------------------------------

    def before_call(self, func: Callable[..., Any], inputs: Sequence[int],
                    written: Sequence[int]) -> None:
        """Called before `func` runs on `inputs` (writing `written`); raise to refuse."""

    def after_call(self, func: Callable[..., Any], inputs: Sequence[int],
                   outputs: Sequence[int], written: Sequence[int]) -> None:
        """A result stays private if it may *be* the private data: made by a copying or
        reshaping op, or at least as large as the smallest private input."""
        if not self._private:
            return
        private = [i for i in inputs if i in self._private]
        if not private:
            return
        smallest = min(self.store.lookup(i).numel() for i in private)
        copying = func_name(func) in COPYING
        for obj_id in outputs:
            if copying or self.store.lookup(obj_id).numel() >= smallest:
                self._private.add(obj_id)

    # ---- leaving ----------------------------------------------------------------------------

    def check_leave(self, obj_ids: Sequence[int]) -> None:
        """Raise PrivateDataError, before anything moves, if any of `obj_ids` may not go."""
        for obj_id in obj_ids:
            if obj_id in self._private:
                raise PrivateDataError(
                    f"{self.store.owner}'s object {obj_id} is private data, or a copy of "
                    f"it: it can be computed on here, but not fetched, copied out or moved. "
                    f"Train on it and fetch what training produces (a model, a loss) instead."
                )

    def release(self, obj_id: int, exit: str) -> None:  # noqa: A002 - the exit's name
        """Let `obj_id` leave through the named exit (`"model"` or `"dp"`)."""
        if exit not in EXITS:
            raise ValueError(f"unknown exit {exit!r}; the exits are {EXITS}")
        self.store.lookup(obj_id)
        self._private.discard(obj_id)

    def remaining(self, dataset_id: int) -> float | None:
        """The epsilon a loaded dataset has left, or None if it has none: lets a release
        that reads several datasets check them all before charging any."""
        return self._budgets.get(dataset_id)

    def charge(self, dataset_id: int, epsilon: float) -> None:
        """Spend `epsilon` of a loaded dataset's budget, or raise BudgetExceededError."""
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}")
        left = self._budgets.get(dataset_id)
        if left is None:
            raise BudgetExceededError(
                f"{self.store.owner}'s object {dataset_id} has no privacy budget: its owner "
                f"must load it with `epsilon=...` before anything about it can be released."
            )
        if epsilon > left:
            raise BudgetExceededError(
                f"{self.store.owner}'s object {dataset_id} has epsilon {left:g} left, less "
                f"than the {epsilon:g} asked for. Ask for less, or for nothing more."
            )
        self._budgets[dataset_id] = left - epsilon

    def forget(self, obj_id: int) -> None:
        """`obj_id` is gone from the store."""
        self._private.discard(obj_id)
        self._budgets.pop(obj_id, None)
