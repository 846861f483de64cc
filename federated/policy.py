"""`PrivacyPolicy`: what may leave a worker, decided in one place. It denies by default.

Every worker owns one policy (`worker.policy`). The worker tells it about data the owner
loads and about every computation, and asks it before any object leaves: `fetch`, `move`
and copying out all go through `check_leave`.

The rules, which hold whatever the operation is (no list of "safe" ops anywhere):

- Each object carries a *label*: a level, PUBLIC < TRAINED < PRIVATE, and the loaded
  datasets it came from. The owner's private data is PRIVATE.
- A result is labelled with everything its inputs carry; so is every tensor an operation
  writes into (in place, `out=`, `.data =`, `x[i] = ...`, `copy_`), and every object
  sharing memory with it.
- A gradient is TRAINED: backward on anything labelled makes the gradients it writes
  TRAINED, and so does private data written over what a graph had saved.
- Python values (numbers, strings, lists) computed from labelled inputs are refused, so
  is an operation whose result *size* would depend on labelled values, and so is torch's
  own error message when an operation on labelled data fails (it can quote values).
- Nobody but the owner changes the owner's private data: writes into it, or into any
  tensor sharing its memory, are refused before they run.
- Fresh memory never shows what was there before: while private data exists anywhere in
  this process, torch fills new allocations, and storage an operation grew is zeroed.

What may leave, and nothing else:
1. the model exit: an `nn.Parameter` labelled at most TRAINED, if every dataset it came
   from was loaded with `model_exit=True` (the default). Its gradient stays behind.
   So may what is computed from such parameters and public values alone (the label's
   `model` flag): it tells no more than the parameters, which may leave anyway, and it
   is how a trained model is averaged without leaving, as shares (lesson 6) or masked.
   A gradient, or anything it flowed into, never carries the flag; what shares such a
   parameter's memory (a view, `.data`) keeps it through updates: it only ever holds
   values the parameter held while it could leave.
2. the dp exit: an object a differential-privacy mechanism released with
   `release(obj_id, "dp")` after `charge`-ing the budget.

A TRAINED parameter can still hold any function of the data: whoever writes the model
and its loss chooses what the gradient is. The model exit is the federated-learning
contract, not a proof of privacy; differential privacy (lesson 8) is what bounds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from federated.errors import BudgetExceededError, PrivateDataError
from federated.language import tr
from federated.store import ObjectStore

PUBLIC, TRAINED, PRIVATE = 0, 1, 2
EXITS = ("model", "dp")  # the named ways out an object can be released through

_GRAD: Any = torch.Tensor.grad  # a getset descriptor at run time; the stubs say Tensor
GET_GRAD = _GRAD.__get__
SET_GRAD = _GRAD.__set__
_GRAD_ALIAS: Any = torch.Tensor._grad  # the same gradient under another name, forwarded too
GRAD_GETTERS = (GET_GRAD, _GRAD_ALIAS.__get__)
GRAD_SETTERS = (SET_GRAD, _GRAD_ALIAS.__set__)
# The calls that run autograd on a worker: the gradients they write are TRAINED.
BACKWARD = (torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad)
_DESCRIPTOR = type(_GRAD)
# ATen tags of operations whose result size, or a Python value, depends on tensor values.
_VALUE_DEPENDENT = (torch.Tag.dynamic_output_shape, torch.Tag.data_dependent_output)
_INTEGER_INDEX = torch.ops.aten.index.Tensor  # sized by its indices' shapes, unless a mask


class Label(NamedTuple):
    """How private an object is, and which loaded datasets (by id) it came from.
    `model`: a TRAINED object computed from parameters the model exit lets out (and
    public values) alone, so it tells nothing those parameters do not."""

    level: int
    sources: frozenset[int]
    model: bool = False


NOTHING = Label(PUBLIC, frozenset())


def join(a: Label, b: Label) -> Label:
    """The label of something computed from both."""
    if b is NOTHING or a == b:
        return a
    if a is NOTHING:
        return b
    return Label(max(a.level, b.level), a.sources | b.sources, a.model and b.model)


def as_gradient(label: Label) -> Label:
    """What a gradient computed from `label` carries: TRAINED, from the same datasets."""
    return NOTHING if label is NOTHING else Label(TRAINED, label.sources)


def func_name(func: Callable[..., Any]) -> str:
    """`add` for torch.add and Tensor.add, `grad` for the gradient property."""
    owner = getattr(func, "__self__", None)
    if isinstance(owner, _DESCRIPTOR):  # a tensor attribute's __get__ or __set__
        return str(owner.__name__)
    return str(getattr(func, "__name__", repr(func)))


def _memory(t: torch.Tensor) -> int:
    """Where a tensor's storage lives: views and `.data` share it with their base."""
    return t.untyped_storage().data_ptr()


def _tensors_in(items: Iterable[Any]) -> Iterator[torch.Tensor]:
    for item in items:
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, (list, tuple)):
            yield from _tensors_in(item)


@dataclass
class Dataset:
    """Private data an owner loaded, and what she allowed for it."""

    model_exit: bool
    original: torch.Tensor  # a pristine copy, put back should a write slip past the checks
    memory: int
    version: int


class _SizeWatch:
    """A torch dispatch mode that refuses any ATen operation whose result size (or a
    Python value it produces) depends on tensor values: `nonzero`, `x[mask]`, `unique`,
    `.item()` inside a composite op. Pushed with torch's C functions, not through
    `TorchDispatchMode`, whose first use imports the whole of torch's compiler (seconds)."""

    def __init__(self, refuse: Callable[[], PrivateDataError]) -> None:
        self.refuse = refuse

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        if any(tag in _VALUE_DEPENDENT for tag in func.tags) and not (
            func is _INTEGER_INDEX
            and not any(t.dtype in (torch.bool, torch.uint8) for t in _tensors_in(args[1:]))
        ):
            raise self.refuse()
        return func(*args, **(kwargs or {}))


def _signature(items: Iterable[Any]) -> tuple:
    """What decides which ATen operations a call runs, short of the values: the
    function's argument types, tensor dtypes and dimensions (a bool mask or an index)."""
    out: list[Any] = []
    for a in items:
        if isinstance(a, torch.Tensor):
            out.append((a.dtype, a.dim()))
        elif type(a) in (list, tuple):
            out.append(_signature(a))
        elif type(a) is dict:
            out.append(tuple(zip(a, _signature(a.values()))))
        else:
            out.append(type(a))
    return tuple(out)


class _Running:
    """Around one call: fresh memory filled, storage growth zeroed, value-dependent
    sizes refused and torch's messages about labelled data withheld.

    Watching sizes costs a trip through Python per ATen operation, so a call is watched
    the first time its function meets labelled data with a given signature; its verdict
    (fixed sizes, or not) is remembered for the whole process."""

    fixed_sizes: set[tuple] = set()
    value_sizes: set[tuple] = set()

    def __init__(
        self,
        policy: PrivacyPolicy,
        func: Callable[..., Any],
        tensors: list[torch.Tensor],
        key: tuple | None,
    ) -> None:
        self.policy, self.func, self.tensors, self.key = policy, func, tensors, key
        self.sizes = [t.untyped_storage().nbytes() for t in tensors]
        self.watching = False

    def __enter__(self) -> None:
        key = self.key
        if key is not None:
            if key in self.value_sizes:
                raise self.refuse_size()
            self.watching = key not in self.fixed_sizes
        self.deterministic = torch.are_deterministic_algorithms_enabled()
        self.warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        if not self.deterministic:  # with it, torch fills what `empty`, `resize_` allocate
            torch._C._set_deterministic_algorithms(True, warn_only=True)
        if self.watching:
            # a duck-typed mode: torch's stubs ask for a TorchDispatchMode
            torch._C._push_on_torch_dispatch_stack(_SizeWatch(self.refuse_size))  # type: ignore[arg-type]

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        key = self.key
        if self.watching and key is not None:  # only watching when there is a key
            torch._C._pop_torch_dispatch_stack(None)
            if error is None:
                self.fixed_sizes.add(key)
            elif getattr(error, "sizes_depend_on_values", False):
                self.value_sizes.add(key)
        if not self.deterministic:
            torch._C._set_deterministic_algorithms(False, warn_only=self.warn_only)
        for t, size in zip(self.tensors, self.sizes):
            storage = t.untyped_storage()
            if storage.nbytes() > size:  # `set_` grows a storage and leaves the rest as is
                torch.empty(0, dtype=torch.uint8).set_(storage)[size:].zero_()
        if error is not None and self.key is not None and not isinstance(error, PrivateDataError):
            raise PrivateDataError(
                tr(
                    "`{func}` failed on {owner}'s private data. Torch's message is withheld, "
                    "since it can quote private values ({kind}). Check the shapes and dtypes, "
                    "which pointers know here (`.shape`, `.dtype`), and call it again instead.",
                    func=func_name(self.func),
                    owner=self.policy.owner,
                    kind=type(error).__name__,
                )
            ) from None

    def refuse_size(self) -> PrivateDataError:
        error = PrivateDataError(
            tr(
                "`{func}` on {owner}'s private data would make a result whose size depends on "
                "the private values, and a pointer tells its size. Only fixed-size forms are "
                "allowed: multiply by a mask (`x * mask`) instead of selecting with it "
                "(`x[mask]`).",
                func=func_name(self.func),
                owner=self.policy.owner,
            )
        )
        error.sizes_depend_on_values = True  # type: ignore[attr-defined]
        return error


class PrivacyPolicy:
    """The privacy rules of one worker; `store` is that worker's object table."""

    # Once any worker in this process holds private data, freed memory anywhere in it
    # may hold some: every worker then fills fresh memory.
    fill_fresh_memory = False

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._labels: dict[int, Label] = {}  # absent: PUBLIC
        self._datasets: dict[int, Dataset] = {}  # the owner's private data, by id
        self._budgets: dict[int, float] = {}  # epsilon left per loaded dataset
        self._grad_set: dict[int, Label] = {}  # labels of gradients set with `t.grad = g`
        self._gradients = NOTHING  # what every gradient computed here may carry
        self._writes = NOTHING  # everything ever written over a tensor here
        # the call's tensor inputs, with their versions and memory before it ran
        self._versions: list[tuple[int, torch.Tensor, int, int]] = []
        # objects whose memory a write already labelled through: (memory, label)
        self._covered: dict[int, tuple[int, Label]] = {}

    @property
    def owner(self) -> str:
        return self.store.owner

    @property
    def active(self) -> bool:
        """Whether anything here carries a label: if not, every check is skipped."""
        return bool(self._labels) or self._gradients is not NOTHING or bool(self._grad_set)

    def label(self, obj_id: int) -> Label:
        return self._labels.get(obj_id, NOTHING)

    def is_private(self, obj_id: int) -> bool:
        """Whether `obj_id` may not leave freely (private data, or computed from it)."""
        return obj_id in self._labels

    # ---- data the owner loads --------------------------------------------------------------

    def on_load(
        self, obj_id: int, *, private: bool, epsilon: float | None, model_exit: bool
    ) -> None:
        """The owner placed `obj_id` here; `epsilon` is its differential-privacy budget,
        `model_exit` whether a model trained on it may leave."""
        if private:
            data = self.store.lookup(obj_id)
            self._labels[obj_id] = Label(PRIVATE, frozenset((obj_id,)))
            self._datasets[obj_id] = Dataset(
                model_exit, data.detach().clone(), _memory(data), data._version
            )
            PrivacyPolicy.fill_fresh_memory = True
        if epsilon is not None:
            self._budgets[obj_id] = float(epsilon)

    # ---- computation -----------------------------------------------------------------------

    def before_call(
        self, func: Callable[..., Any], inputs: Sequence[int], written: Sequence[int]
    ) -> None:
        """Refuse, before anything runs, a write into the owner's private data."""
        if not self._datasets:
            return
        store = self.store
        if written:
            for obj_id in written:
                target = store.get(obj_id)
                if isinstance(target, torch.Tensor):
                    self._refuse_owner_write(func, _memory(target))
        self._versions = [
            (i, t, t._version, _memory(t))
            for i in inputs
            if isinstance(t := store.get(i), torch.Tensor)
        ]

    def running(
        self,
        func: Callable[..., Any],
        inputs: Sequence[int],
        args: Sequence[Any],
        kwargs: dict[str, Any],
    ) -> _Running | None:
        """A context for the call itself (see `_Running`); None while this process has
        never held private data, and the call needs nothing around it."""
        if not PrivacyPolicy.fill_fresh_memory:
            return None
        store = self.store
        tensors = [t for i in inputs if isinstance(t := store.get(i), torch.Tensor)]
        labels = self._labels
        key = None
        if labels and any(i in labels for i in inputs):
            key = (func, _signature(args), _signature(kwargs.items()) if kwargs else ())
        return _Running(self, func, tensors, key)

    def check_result(
        self, func: Callable[..., Any], inputs: Sequence[int], written: Sequence[int], result: Any
    ) -> None:
        """Refuse a Python value (number, string, list...) computed from labelled data.
        Metadata (`torch.Size`, dtypes, attributes such as `requires_grad`) and `None`
        carry no values and pass. Methods that read metadata (`stride()`) are refused
        with the rest: `tolist` and `repr` read values without telling torch's dispatcher,
        so what a method reads cannot be told from outside."""
        if isinstance(result, torch.Tensor) or not self.active:
            return
        if isinstance(getattr(func, "__self__", None), _DESCRIPTOR):
            return  # a tensor attribute read, `t.requires_grad`, `t.is_leaf`: metadata
        label = self._join(inputs)
        if label is NOTHING or not _carries_values(result):
            return
        self.after_call(func, inputs, (), written)  # whatever it wrote stays labelled
        raise PrivateDataError(
            tr(
                "`{func}` would hand you a Python value computed from {owner}'s private data. "
                "Only tensors come back from computing on it, as pointers, and they stay on "
                "{owner}: keep computing with them instead.",
                func=func_name(func),
                owner=self.owner,
            )
        )

    def after_call(
        self,
        func: Callable[..., Any],
        inputs: Sequence[int],
        outputs: Sequence[int],
        written: Sequence[int],
    ) -> None:
        """Label the results and everything written; check the owner's data is intact."""
        if not (self._labels or self._grad_set or self._gradients is not NOTHING):
            return  # `active`, written out: this runs for every call
        versions, self._versions = self._versions, []
        if self._datasets:  # written: foreseen, or seen by torch's version counters
            bumped = [i for i, t, v, _ in versions if t._version != v and i not in written]
            written = [*written, *bumped]
            memories = {m for i, _, _, m in versions if i in written}
            self._check_datasets(func, inputs, outputs, memories)
        if func in GRAD_GETTERS:
            self._label_all(outputs, self._grad_label(inputs[0]))
            return
        if func in GRAD_SETTERS:  # the gradient changes, not the tensor's own values
            label = self._join(inputs)
            if label is NOTHING:
                self._grad_set.pop(inputs[0], None)
            else:
                self._grad_set[inputs[0]] = label
            return
        label = self._join(inputs)
        if func in BACKWARD:
            self._gradients = join(self._gradients, as_gradient(join(label, self._writes)))
            self._label_all(outputs, self._gradients)
            self._label_gradients(map(self.store.get, inputs))
            return
        self._label_copied_gradients(inputs, outputs)
        if label is NOTHING:
            return
        self._label_all([o for o in outputs if o not in inputs], label)
        self._label_writes(written, label)

    # ---- leaving ----------------------------------------------------------------------------

    def check_leave(self, obj_ids: Sequence[int]) -> None:
        """Raise PrivateDataError, before anything moves, if any of `obj_ids` may not go.
        Those that go leave their gradient behind if it carries a label."""
        if not self.active:
            return
        for obj_id in obj_ids:
            label = self._labels.get(obj_id)
            if label is not None:
                self._check_exit(obj_id, label)
        for obj_id in obj_ids:
            obj = self.store.get(obj_id)
            if (
                isinstance(obj, torch.Tensor)
                and (obj.is_leaf or obj.retains_grad)
                and obj.grad is not None
                and self._grad_label(obj_id) is not NOTHING
            ):
                obj.grad = None

    def release(self, obj_id: int, exit: str) -> None:  # noqa: A002 - the exit's name
        """Let `obj_id` leave through the named exit: `"dp"` after a differentially
        private mechanism made it (and charged the budget), or `"model"` for a parameter
        the model exit lets out anyway (refused otherwise)."""
        if exit not in EXITS:
            raise ValueError(
                tr("unknown exit {exit}; the exits are {exits}", exit=repr(exit), exits=EXITS)
            )
        self.store.lookup(obj_id)
        label = self._labels.get(obj_id)
        if exit == "model" and label is not None:
            self._check_exit(obj_id, label)
        self._labels.pop(obj_id, None)
        self._grad_set.pop(obj_id, None)
        self._covered.clear()  # what shares its memory may have been covered by it

    def remaining(self, dataset_id: int) -> float | None:
        """The epsilon a loaded dataset has left, or None if it has none: lets a release
        that reads several datasets check them all before charging any."""
        return self._budgets.get(dataset_id)

    def check_budget(self, dataset_ids: Sequence[int], epsilon: float) -> None:
        """Raise BudgetExceededError, before anything is spent, if any of `dataset_ids`
        cannot pay `epsilon`: a release that reads several datasets is all or nothing."""
        for dataset_id in dataset_ids:
            left = self._budgets.get(dataset_id)
            if left is None:
                raise BudgetExceededError(
                    tr(
                        "{worker}'s dataset {dataset_id} has no privacy budget: its owner "
                        "must load it with `epsilon=...` before anything about it is released.",
                        worker=self.owner,
                        dataset_id=dataset_id,
                    )
                )
            if epsilon > left:
                raise BudgetExceededError(
                    tr(
                        "{worker}'s dataset {dataset_id} has epsilon {left} left, and this "
                        "release would cost {cost}. Ask for less (a smaller epsilon, more "
                        "noise, fewer steps), or ask nothing more about this data.",
                        worker=self.owner,
                        dataset_id=dataset_id,
                        left=format(left, ".3g"),
                        cost=format(epsilon, ".3g"),
                    )
                )

    def charge(self, dataset_ids: Sequence[int], epsilon: float) -> None:
        """Spend `epsilon` of every one of `dataset_ids`' budgets, all or none."""
        if not epsilon > 0:
            raise ValueError(tr("epsilon must be positive, got {epsilon}", epsilon=epsilon))
        self.check_budget(dataset_ids, epsilon)
        for dataset_id in dataset_ids:
            self._budgets[dataset_id] -= epsilon

    def forget(self, obj_id: int) -> None:
        """`obj_id` is gone from the store."""
        if self._labels:
            self._labels.pop(obj_id, None)
        if self._grad_set:
            self._grad_set.pop(obj_id, None)
        if self._covered:
            self._covered.pop(obj_id, None)
        if obj_id in self._datasets:
            del self._datasets[obj_id]
            self._budgets.pop(obj_id, None)

    # ---- the rules' workings -----------------------------------------------------------------

    def _join(self, ids: Iterable[int]) -> Label:
        """The label of what is computed from `ids`. A parameter the model exit lets out
        counts as carrying the `model` flag: computing from it may leave too."""
        labels, label = self._labels, NOTHING
        for i in ids:
            found = labels.get(i)
            if found is not None:
                if found.level == TRAINED and not found.model and self._may_exit(i, found):
                    found = found._replace(model=True)
                label = join(label, found)
        return label

    def _may_exit(self, obj_id: int, label: Label) -> bool:
        """Whether the model exit lets `obj_id` out: a parameter, or what the flag marks,
        at most TRAINED, from datasets whose owner allowed trained models to leave."""
        is_model = label.model or isinstance(self.store.get(obj_id), nn.Parameter)
        return (
            is_model
            and label.level <= TRAINED
            and all(self._dataset_allows_models(s) for s in label.sources)
        )

    def _label_all(self, ids: Iterable[int], label: Label) -> None:
        if label is NOTHING:
            return
        labels = self._labels
        for i in ids:
            labels[i] = join(labels.get(i, NOTHING), label)

    def _label_writes(self, written: Sequence[int], label: Label) -> None:
        """Label what was written, and every object sharing its memory: a view made
        before the write, the tensor a `.data` came from, a tensor `.data =` pointed at
        that memory. One pass over the store for all of a call's targets.

        The pass is skipped for a target already covered: scanned before at the same
        memory for at least this label. While it lives its memory cannot be reused, and
        anything that came to share the memory since (a view, `.data =`, `set_`) got its
        label from an object the scan had labelled. An optimizer writes each parameter
        every step; this is what keeps that cheap."""
        if not written or label is NOTHING:
            return
        self._writes = join(self._writes, label)
        covered, targets = self._covered, {}
        for i in written:
            t = self.store.get(i)
            if isinstance(t, torch.Tensor):
                memory = _memory(t)
                seen = covered.get(i)
                if seen is None or seen[0] != memory or join(seen[1], label) != seen[1]:
                    targets[i] = memory
        if not targets:
            return
        memories = set(targets.values())
        sharing = [
            i
            for i, t in self.store.items()
            if isinstance(t, torch.Tensor) and _memory(t) in memories
        ]
        self._label_all({*written, *sharing}, label)
        for i, memory in targets.items():
            covered[i] = (memory, self._labels[i])

    def _label_gradients(self, roots: Iterable[Any]) -> None:
        """After backward from `roots`: gradients accumulate in place, so an object that
        *is* a gradient (a pointer to `p.grad` read before, a tensor set as one) now
        carries what backward did, even if the store no longer holds its leaf."""
        if self._gradients is NOTHING:
            return
        tensors = [t for t in self.store.values() if isinstance(t, torch.Tensor)]
        memories = {
            _memory(t.grad) for t in tensors if (t.is_leaf or t.retains_grad) and t.grad is not None
        }
        memories.update(_memory(t.grad) for t in _leaves(roots) if t.grad is not None)
        if memories:
            self._label_all(
                [
                    i
                    for i, t in self.store.items()
                    if isinstance(t, torch.Tensor) and _memory(t) in memories
                ],
                self._gradients,
            )

    def _label_copied_gradients(self, inputs: Sequence[int], outputs: Sequence[int]) -> None:
        """A new result that came with a gradient (`copy.deepcopy` copies `.grad`) has,
        as its gradient's label, what the inputs' gradients carried."""
        for o in outputs:
            t = self.store.get(o)
            if o in inputs or not isinstance(t, torch.Tensor) or not t.is_leaf or t.grad is None:
                continue
            label = NOTHING
            for i in inputs:
                label = join(label, self._grad_label(i))
            if label is not NOTHING:
                self._grad_set[o] = join(self._grad_set.get(o, NOTHING), label)

    def _grad_label(self, obj_id: int) -> Label:
        """What the gradient of `obj_id` may carry: whatever backward here computed
        from, whatever was set as it, and whatever shares its memory."""
        label = join(self._gradients, self._grad_set.get(obj_id, NOTHING))
        obj = self.store.get(obj_id)
        grad = (
            obj.grad
            if isinstance(obj, torch.Tensor) and (obj.is_leaf or obj.retains_grad)
            else None
        )
        if grad is not None and self._labels:
            memory = _memory(grad)
            for i, found in list(self._labels.items()):
                t = self.store.get(i)
                if isinstance(t, torch.Tensor) and _memory(t) == memory:
                    label = join(label, found)
        return label

    def _check_exit(self, obj_id: int, label: Label) -> None:
        """Pass if the model exit lets `obj_id` out, else say why not."""
        if self._may_exit(obj_id, label):
            return
        obj = self.store.get(obj_id)
        if (isinstance(obj, nn.Parameter) or label.model) and label.level <= TRAINED:
            forbidding = sorted(s for s in label.sources if not self._dataset_allows_models(s))
            raise PrivateDataError(
                tr(
                    "{owner}'s object {obj_id} is a parameter of a model trained on private data "
                    "whose owner loaded it with `model_exit=False` (dataset {datasets}): the "
                    "model stays on {owner}. Only results released with differential privacy "
                    "(lesson 8) may leave instead.",
                    owner=self.owner,
                    obj_id=obj_id,
                    datasets=", ".join(map(str, forbidding)),
                )
            )
        if label.level == TRAINED:
            message = tr(
                "{owner}'s object {obj_id} cannot be fetched, moved or copied out: it is a "
                "gradient of training on private data, or computed from one, and only a model's "
                "parameters leave through the model exit: fetch the trained model with "
                "`model.get()` instead.",
                owner=self.owner,
                obj_id=obj_id,
            )
        else:
            message = tr(
                "{owner}'s object {obj_id} cannot be fetched, moved or copied out: it is "
                "computed from private data, so it stays here. Only a model trained on it "
                "(`model.get()`) and results released with differential privacy (lesson 8) may "
                "leave: fetch the trained model instead.",
                owner=self.owner,
                obj_id=obj_id,
            )
        raise PrivateDataError(message)

    def _dataset_allows_models(self, dataset_id: int) -> bool:
        dataset = self._datasets.get(dataset_id)
        return dataset is not None and dataset.model_exit

    def _refuse_owner_write(self, func: Callable[..., Any], memory: int) -> None:
        for obj_id, dataset in self._datasets.items():
            if dataset.memory == memory:
                raise PrivateDataError(
                    tr(
                        "`{func}` would change {owner}'s private data (object {obj_id}) in "
                        "place, and only its owner may change it. Compute on a copy instead, "
                        "e.g. `x = data * 1`, and change `x`.",
                        func=func_name(func),
                        owner=self.owner,
                        obj_id=obj_id,
                    )
                )

    def _check_datasets(
        self,
        func: Callable[..., Any],
        inputs: Sequence[int],
        outputs: Sequence[int],
        memories: set[int],
    ) -> None:
        """After a call: if a write reached the owner's data after all (through a tensor
        sharing its memory, by an operation nobody foresaw writing), put the data back,
        drop the call's new results, and refuse. `memories`: where the call wrote."""
        for obj_id, dataset in self._datasets.items():
            data = self.store.get(obj_id)
            if data is None or (
                data._version == dataset.version
                and dataset.memory not in memories
                and _memory(data) == dataset.memory
            ):
                continue
            self.store[obj_id] = dataset.original.clone()
            for new in outputs:
                if new not in inputs:
                    self.store.discard(new)
                    self.forget(new)
            restored = self.store.lookup(obj_id)
            dataset.memory, dataset.version = _memory(restored), restored._version
            raise PrivateDataError(
                tr(
                    "`{func}` changed {owner}'s private data (object {obj_id}) in place, and "
                    "only its owner may change it; it has been put back as the owner loaded it. "
                    "Compute on a copy instead, e.g. `x = data * 1`, and change `x`.",
                    func=func_name(func),
                    owner=self.owner,
                    obj_id=obj_id,
                )
            )


def _leaves(roots: Iterable[Any]) -> Iterator[torch.Tensor]:
    """The leaf tensors whose `.grad` a backward from `roots` adds into: the graph holds
    them, whether or not the store still does (`q.grad = t`, then the pointer to `q` dropped)."""
    seen: set[Any] = set()
    stack = [t.grad_fn for t in roots if isinstance(t, torch.Tensor)]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        leaf = getattr(node, "variable", None)  # an AccumulateGrad node's leaf
        if isinstance(leaf, torch.Tensor):
            yield leaf
        stack.extend(next_node for next_node, _ in node.next_functions)


def _carries_values(result: Any) -> bool:
    """Whether a non-tensor result holds values rather than only metadata."""
    if result is None or isinstance(
        result, (torch.Size, torch.dtype, torch.device, torch.layout, torch.memory_format)
    ):
        return False
    if isinstance(result, (list, tuple)):
        return any(_carries_values(r) for r in result)
    return not isinstance(result, torch.Tensor)
