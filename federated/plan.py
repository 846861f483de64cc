"""Plans: a computation traced once, sent once, run many times (PySyft 0.2's Part 8).

    @sy.func2plan(args_shape=[(1,)], state=(torch.tensor([3.0]),))
    def add_bias(x, state):
        (bias,) = state.read()
        return torch.abs(x + x) + bias

    plan_ptr = add_bias.send(bob)     # the graph and its state go to bob once
    plan_ptr(x_ptr)                   # every later call is one message

Why a plan: a training step is dozens of operations, and sending them one by one costs
one round trip each. A plan costs one.

What travels is never code. `torch.fx` traces the function (or the module's `forward`)
into a graph; each operation of the graph is named by the same allow-list single calls
use on the wire (`federated.protocol.op_name`), and the graph is written as plain JSON
(`PlanGraph.to_json`). Shapes and other metadata the function reads are fixed at build
time, as in any trace. The worker reads the JSON back with `PlanGraph.from_json`, which
refuses anything outside the schema before a thing is kept, and runs each operation
through its ordinary executor, so the privacy policy sees a plan's operations exactly as
it sees single calls. A plan is a straight line of operations: it cannot loop, import,
read attributes other than a tensor's, or reach objects it was not given.
"""

from __future__ import annotations

import inspect
import itertools
import operator
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from federated import protocol
from federated.errors import FederatedError
from federated.language import tr
from federated.pointer import PointerTensor
from federated.protocol import ProtocolError, Ref

MAX_OPS = 10_000  # a plan longer than this is a mistake or an attack
MAX_KEPT = 256  # plans one worker keeps at once: each holds its graph and state in memory
_ITEM = "$item"  # the one operation that is not torch's: element i of a tuple result

__all__ = ["Plan", "PlanError", "PlanGraph", "PlanPointer", "State", "func2plan"]


class PlanError(FederatedError, ValueError):
    """A function that cannot become a plan, or a plan used the wrong way."""


class State:
    """The tensors a plan carries with it (PySyft's `state`); `read()` gives them back."""

    def __init__(self, tensors: Sequence[torch.Tensor]) -> None:
        if not all(isinstance(t, torch.Tensor) for t in tensors):
            raise TypeError(tr("a plan's state is a tuple of tensors, e.g. state=(torch.ones(1),)"))
        self.tensors = tuple(tensors)

    def read(self) -> tuple[torch.Tensor, ...]:
        return self.tensors


# ---- the graph: what is sent ---------------------------------------------------------------


@dataclass
class PlanGraph:
    """A straight line of allow-listed operations on numbered slots.

    Slots 0..inputs-1 are the arguments, the next `len(state)` are the state tensors, and
    each operation adds one slot holding its result. An operation's arguments are schema
    values (`federated.protocol.encode`) in which `{"$ref": k}` names slot k.
    """

    inputs: int
    state: list[torch.Tensor]
    ops: list[dict[str, Any]]
    output: Any

    def to_json(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """The plan as a JSON header part and its state tensors (for safetensors)."""
        header = {
            "inputs": self.inputs,
            "state": len(self.state),
            "ops": self.ops,
            "output": self.output,
        }
        return header, {f"s{i}": t.detach().clone() for i, t in enumerate(self.state)}

    @classmethod
    def from_json(cls, header: Any, tensors: dict[str, torch.Tensor]) -> PlanGraph:
        """Read and check a plan; ProtocolError (and nothing kept) if anything is off."""
        if not isinstance(header, dict):
            raise ProtocolError(tr("a plan is a JSON object"))
        inputs, n_state, ops = header.get("inputs"), header.get("state"), header.get("ops")
        if (
            type(inputs) is not int
            or type(n_state) is not int
            or not 0 <= inputs <= 64
            or not 0 <= n_state <= 4096
        ):
            raise ProtocolError(tr("a plan names how many inputs and state tensors it has"))
        if not isinstance(ops, list) or len(ops) > MAX_OPS:
            raise ProtocolError(
                tr("a plan's ops are a list of at most {max_ops} operations", max_ops=MAX_OPS)
            )
        state = []
        for i in range(n_state):
            if f"s{i}" not in tensors:
                raise ProtocolError(tr("state tensor s{i} missing", i=i))
            state.append(tensors[f"s{i}"])
        slots = inputs + n_state
        for index, op in enumerate(ops):
            _check_op(op, slots, index)
            slots += 1
        _check_refs(header.get("output"), slots)
        return cls(inputs, state, ops, header.get("output"))

    def run(
        self,
        args: Sequence[Any],
        state: Sequence[Any],
        call: Callable[[Callable[..., Any], tuple, dict], Any],
        slots: list[Any] | None = None,
    ) -> Any:
        """Run every operation with `call(func, args, kwargs)`; `args` and `state` are
        whatever `call` understands (tensors here, pointers or references on a worker).

        `slots`, if given, is filled with every value made, so the caller can free them
        (also when an operation fails halfway).
        """
        if len(args) != self.inputs:
            raise PlanError(
                tr(
                    "this plan takes {inputs} tensor(s), got {args_count}",
                    inputs=self.inputs,
                    args_count=len(args),
                )
            )
        if len(state) != len(self.state):
            raise PlanError(tr("the plan's state does not match its graph"))
        slots = [] if slots is None else slots
        slots.extend([*args, *state])

        def resolve(k: int) -> Any:
            return slots[k]

        for op in self.ops:
            if op["op"] == _ITEM:
                slots.append(_item(slots[op["of"]], op["index"]))
                continue
            func = protocol.op_func(op["op"])
            call_args = protocol.decode(op.get("args", {"$tuple": []}), resolve)
            kwargs = protocol.decode(op.get("kwargs", {"$dict": []}), resolve)
            slots.append(call(func, tuple(call_args), kwargs))
        return protocol.decode(self.output, resolve)


def _check_op(op: Any, slots: int, index: int) -> None:
    """An operation names an allowed torch function and only slots made before it."""
    if not isinstance(op, dict) or not isinstance(op.get("op"), str):
        raise ProtocolError(tr("operation {index} is not {'op': name, 'args': ...}", index=index))
    if op["op"] == _ITEM:
        if (
            set(op) != {"op", "of", "index"}
            or type(op["of"]) is not int
            or not 0 <= op["of"] < slots
            or type(op["index"]) is not int
        ):
            raise ProtocolError(
                tr("operation {index}: $item takes a slot and an index", index=index)
            )
        return
    if not set(op) <= {"op", "args", "kwargs"}:
        raise ProtocolError(
            tr("operation {index} has unknown fields {value}", index=index, value=sorted(set(op)))
        )
    try:
        protocol.op_func(op["op"])
    except ProtocolError:
        raise ProtocolError(
            tr(
                "operation {index}: {value} is not an operation a worker runs; a plan "
                "may hold only allow-listed torch operations",
                index=index,
                value=repr(op["op"]),
            )
        ) from None
    args = protocol.decode(op.get("args", {"$tuple": []}), _slot_checker(slots))
    kwargs = protocol.decode(op.get("kwargs", {"$dict": []}), _slot_checker(slots))
    if not isinstance(args, tuple) or not isinstance(kwargs, dict):
        raise ProtocolError(tr("operation {index}: args is a tuple and kwargs a dict", index=index))


def _check_refs(value: Any, slots: int) -> None:
    protocol.decode(value, _slot_checker(slots))


def _slot_checker(slots: int) -> Callable[[int], Any]:
    def check(k: int) -> Any:
        if not 0 <= k < slots:
            raise ProtocolError(tr("a plan refers to slot {k}, which does not exist yet", k=k))
        return Ref(k)

    return check


def _item(value: Any, index: int) -> Any:
    if not isinstance(value, (tuple, list)) or not -len(value) <= index < len(value):
        raise ProtocolError(tr("$item takes an element of a tuple result"))
    return value[index]


# ---- tracing: function or module → graph ------------------------------------------------


class _Inline(fx.Tracer):
    """Traces through every submodule, down to torch functions."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return False


# `a + b` in traced code reaches fx as operator.add: the tensor method it stands for, and
# the method to use when the tensor is on the right (`2 - x` is `x.__rsub__(2)`).
_BINARY = {
    operator.add: "add",
    operator.sub: "sub",
    operator.mul: "mul",
    operator.truediv: "truediv",
    operator.floordiv: "floordiv",
    operator.mod: "mod",
    operator.pow: "pow",
    operator.matmul: "matmul",
    operator.and_: "and",
    operator.or_: "or",
    operator.xor: "xor",
    operator.lshift: "lshift",
    operator.rshift: "rshift",
}
_COMPARE = {
    operator.eq: ("eq", "eq"),
    operator.ne: ("ne", "ne"),
    operator.lt: ("lt", "gt"),
    operator.le: ("le", "ge"),
    operator.gt: ("gt", "lt"),
    operator.ge: ("ge", "le"),
}
_UNARY = {operator.neg: "neg", operator.pos: "pos", operator.invert: "invert", operator.abs: "abs"}
_REVERSED = {"truediv": "__rdiv__"}
# Metadata a function may read while it is traced; the value is fixed in the plan.
_METADATA = frozenset(
    {torch.Tensor.size, torch.Tensor.dim, torch.Tensor.numel, torch.Tensor.nelement}
)
_METADATA_ATTRS = frozenset({"shape", "ndim", "dtype", "device"})


def _tensor_method(node: fx.Node, values: list[Any]) -> tuple[Callable[..., Any], list[int]]:
    """The torch function an fx node calls on tensors, and the order to pass the node's
    arguments in (`2 - x` becomes `x.__rsub__(2)`: order [1, 0])."""
    target, order = node.target, list(range(len(values)))
    if node.op == "call_method":
        func = getattr(torch.Tensor, str(target), None)
        if func is None or not callable(func):
            raise PlanError(
                tr("`.{target}()` is not a tensor method, so it cannot be in a plan", target=target)
            )
        return func, order
    tensor_first = bool(values) and isinstance(values[0], torch.Tensor)
    if target in _BINARY:
        name = _BINARY[target]
        if tensor_first:
            return getattr(torch.Tensor, f"__{name}__"), order
        return getattr(torch.Tensor, _REVERSED.get(name, f"__r{name}__")), [1, 0]
    if target in _COMPARE:
        name, mirrored = _COMPARE[target]
        return getattr(torch.Tensor, f"__{name if tensor_first else mirrored}__"), (
            order if tensor_first else [1, 0]
        )
    if target in _UNARY:
        return getattr(torch.Tensor, f"__{_UNARY[target]}__"), order
    if target is operator.getitem:
        return torch.Tensor.__getitem__, order
    if target is operator.setitem:
        return torch.Tensor.__setitem__, order
    if target is getattr:
        attr = values[1] if len(values) == 2 else None
        descriptor = getattr(torch.Tensor, attr, None) if isinstance(attr, str) else None
        getter = getattr(descriptor, "__get__", None)
        if getter is None or callable(descriptor):
            raise PlanError(
                tr("a plan may read tensor attributes only, not {attr}", attr=repr(attr))
            )
        return getter, [0]
    if not callable(target):
        raise PlanError(
            tr("`{target}` cannot be in a plan (only tensor operations)", target=target)
        )
    return target, order


def trace(
    function: Callable[..., Any],
    args: Sequence[torch.Tensor],
    state: Sequence[torch.Tensor],
    module: nn.Module | None = None,
) -> PlanGraph:
    """Trace `function(*args[, State(state)])` (or `module.forward(*args)`) into a graph.

    Each node is run once on `args` as it is converted, so the graph's operations are
    exactly those the function ran, and metadata such as shapes can be fixed.
    """
    tracer = _Inline()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # fx on specialised arguments
            if module is not None:
                graph = tracer.trace(module)
            else:
                concrete = {}
                if state:
                    params = [
                        p
                        for p in inspect.signature(function).parameters.values()
                        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                    ]
                    concrete = {params[-1].name: State(state)}
                graph = tracer.trace(function, concrete_args=concrete)
    except Exception as error:  # fx's TraceError, or a proxy used as a Python value
        raise PlanError(
            tr(
                "this function cannot be traced into a plan ({kind}: {error}). A plan is "
                "a straight line of tensor operations: no `if` or loop on tensor values, "
                "no conversion of a tensor to Python values.",
                kind=type(error).__name__,
                error=error,
            )
        ) from None
    return _convert(graph, tracer.root, list(args), list(state))


def _convert(
    graph: fx.Graph, root: nn.Module, args: list[torch.Tensor], state: list[torch.Tensor]
) -> PlanGraph:
    """fx graph → PlanGraph. Slots: inputs, then tensors carried (state, parameters,
    constants) in the order first used, then one per operation."""
    values: dict[fx.Node, Any] = {}  # each node's value on the build arguments
    carried: dict[fx.Node, torch.Tensor] = {}
    steps: list[tuple[fx.Node, Any]] = []  # (node, torch function or _ITEM)
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) - len(args) not in (0, 1):  # one more: the concrete state
        raise PlanError(
            tr(
                "build the plan with one example tensor per argument "
                "({placeholders_count} expected, {args_count} given)",
                placeholders_count=len(placeholders),
                args_count=len(args),
            )
        )
    values.update(zip(placeholders, args))
    live = set(placeholders[: len(args)])  # nodes whose value will live on the worker
    output: Any = None
    for node in graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            output = node.args[0]
            break
        if node.op == "get_attr":
            obj: Any = root
            for part in str(node.target).split("."):
                obj = getattr(obj, part)
            if not isinstance(obj, torch.Tensor):
                raise PlanError(
                    tr("a plan can carry tensors only, not {kind}", kind=type(obj).__name__)
                )
            values[node], carried[node] = obj, obj
            live.add(node)
            continue
        if node.op not in ("call_function", "call_method"):
            raise PlanError(
                tr("`{target}` cannot be in a plan (only tensor operations)", target=node.target)
            )
        arg_values = list(_map_nodes(node.args, values.__getitem__))
        kwargs = _map_nodes(dict(node.kwargs), values.__getitem__)
        source = arg_values[0] if arg_values else None
        if node.target is operator.getitem and isinstance(source, (tuple, list)):
            values[node] = source[arg_values[1]]
            if node.args[0] in live:
                live.add(node)
                steps.append((node, _ITEM))
            continue
        if not any(n in live for n in node.all_input_nodes):
            if node.op != "call_function" or not _plain(node.target):
                raise PlanError(tr("`{target}` cannot be in a plan", target=node.target))
            values[node] = node.target(*arg_values, **kwargs)
            continue  # arithmetic on shapes: fixed at build time
        func, order = _tensor_method(node, arg_values)
        values[node] = func(*[arg_values[i] for i in order], **kwargs)
        if not _holds_tensor(values[node]):
            if func in _METADATA or (node.target is getattr and arg_values[1] in _METADATA_ATTRS):
                continue  # a shape or dtype: fixed at build time, as in any trace
            raise PlanError(
                tr(
                    "`{value}` turns a tensor into a plain Python value, which a plan would "
                    "fix at build time. Keep the result a tensor.",
                    value=getattr(func, "__name__", func),
                )
            )
        if not _allowed(func):
            raise PlanError(
                tr(
                    "`{value}` is not an operation a worker may run, so it cannot be in a plan",
                    value=getattr(func, "__name__", func),
                )
            )
        live.add(node)
        steps.append((node, func))

    numbers = {n: i for i, n in enumerate(placeholders[: len(args)])}
    unique: dict[int, int] = {}  # id(tensor) -> its slot: a tensor used twice is carried once
    for node, tensor in carried.items():
        numbers[node] = unique.setdefault(id(tensor), len(args) + len(unique))
    next_slot = len(args) + len(unique)
    for node, _ in steps:
        numbers[node], next_slot = next_slot, next_slot + 1

    def wire(a: Any) -> Any:
        return _map_nodes(a, lambda n: Ref(numbers[n]) if n in numbers else values[n])

    ops: list[dict[str, Any]] = []
    for node, func in steps:
        if func is _ITEM:
            tuple_node: Any = node.args[0]  # the node of the tuple-valued result
            ops.append({"op": _ITEM, "of": numbers[tuple_node], "index": int(wire(node.args[1]))})
            continue
        _, order = _tensor_method(node, list(_map_nodes(node.args, values.__getitem__)))
        call_args = list(wire(node.args))
        ops.append(
            {
                "op": protocol.op_name(func),
                "args": protocol.encode(tuple(call_args[i] for i in order), _no_tensor),
                "kwargs": protocol.encode(wire(dict(node.kwargs)), _no_tensor),
            }
        )
    try:
        out = protocol.encode(wire(output), _no_tensor)
    except ProtocolError:
        raise PlanError(tr("a plan returns tensors, or tuples and lists of them")) from None
    kept = list({id(t): t for t in carried.values()}.values())
    return PlanGraph(len(args), kept, ops, out)


def _map_nodes(value: Any, fn: Callable[[fx.Node], Any]) -> Any:
    """`value` with every fx node in it replaced by `fn(node)`."""
    if isinstance(value, fx.Node):
        return fn(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_map_nodes(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_nodes(v, fn) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(*(_map_nodes(v, fn) for v in (value.start, value.stop, value.step)))
    return value


def _plain(func: Any) -> bool:
    """Python arithmetic on numbers and shapes, safe to run at build time."""
    return func in _BINARY or func in _COMPARE or func in _UNARY or func is operator.getitem


def _allowed(func: Any) -> bool:
    try:
        protocol.op_name(func)
    except ProtocolError:
        return False
    return True


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(_holds_tensor(v) for v in value)
    return False


def _no_tensor(value: Any) -> Any:
    raise PlanError(tr("a tensor made at build time must be part of the plan's state"))


# ---- plans kept by workers -------------------------------------------------------------------


@dataclass
class _Kept:
    """A plan a worker holds: its graph and handles to its state on that worker."""

    graph: PlanGraph
    state: list[Any]


_KEPT: weakref.WeakKeyDictionary[Any, dict[int, _Kept]] = weakref.WeakKeyDictionary()
_NEXT_ID = itertools.count(1)


def keep(
    worker: Any, header: Any, tensors: dict[str, torch.Tensor], hold: Callable[[torch.Tensor], Any]
) -> int:
    """Check a plan received by `worker` and keep it; returns its id there.

    `hold(tensor)` stores one state tensor on the worker and returns a handle. Nothing is
    stored unless the whole plan passes the checks.
    """
    graph = PlanGraph.from_json(header, tensors)
    if len(_KEPT.get(worker, {})) >= MAX_KEPT:
        raise PlanError(
            tr(
                "{value} keeps {max_kept} plans already, the most it keeps at once: free "
                "plans you no longer need before sending more",
                value=getattr(worker, "id", worker),
                max_kept=MAX_KEPT,
            )
        )
    kept = _Kept(graph, [hold(t) for t in graph.state])
    plan_id = next(_NEXT_ID)
    _KEPT.setdefault(worker, {})[plan_id] = kept
    return plan_id


def run_kept(
    worker: Any,
    plan_id: Any,
    args: Sequence[Any],
    call: Callable[[Callable[..., Any], tuple, dict], Any],
    free: Callable[[int], None] | None = None,
) -> Any:
    """Run a plan `worker` holds on the handles `args`, each operation through `call`
    (the worker's executor, so its privacy policy applies). With `free`, every
    intermediate result is freed afterwards, and everything made is freed on an error."""
    kept = _KEPT.get(worker, {}).get(plan_id) if type(plan_id) is int else None
    if kept is None:
        raise PlanError(
            tr(
                "{value} holds no plan {plan_id}: send it first with `plan.send(worker)`",
                value=getattr(worker, "id", worker),
                plan_id=repr(plan_id),
            )
        )
    known = {h.id_at_location for h in (*args, *kept.state)}
    slots: list[Any] = []  # filled as the plan runs, so a failure can free what it made
    try:
        output = kept.graph.run(args, kept.state, call, slots)
        output = _protect_state(output, {h.id_at_location for h in kept.state}, call)
    except Exception:
        if free is not None:
            for h in _handles(slots):
                if h.id_at_location not in known:
                    free(h.id_at_location)
        raise
    if free is not None:
        keep_ids = {h.id_at_location for h in _handles([output])} | known
        for h in _handles(slots):
            if h.id_at_location not in keep_ids:
                free(h.id_at_location)
                keep_ids.add(h.id_at_location)
    return output


def forget(worker: Any, plan_id: int) -> None:
    _KEPT.get(worker, {}).pop(plan_id, None)


def _protect_state(output: Any, state_ids: set[int], call: Callable[..., Any]) -> Any:
    """A plan that returns one of its state tensors returns a copy: the caller's pointer
    must not own the plan's state."""
    if type(getattr(output, "id_at_location", None)) is int:
        return call(torch.clone, (output,), {}) if output.id_at_location in state_ids else output
    if isinstance(output, (tuple, list)):
        return type(output)(_protect_state(o, state_ids, call) for o in output)
    return output


def _handles(values: Sequence[Any]) -> list[Any]:
    found = []
    for v in values:
        if type(getattr(v, "id_at_location", None)) is int:
            found.append(v)
        elif isinstance(v, (tuple, list)):
            found.extend(_handles(v))
    return found


# ---- the caller's side -----------------------------------------------------------------------


class PlanPointer:
    """A plan kept on `location` (PySyft's pointer to a plan): call it on pointers there."""

    def __init__(self, location: Any, id_at_location: int, inputs: int) -> None:
        self.location, self.id_at_location, self.inputs = location, id_at_location, inputs

    def __repr__(self) -> str:
        return f"(PlanPointer {self.location.id}:{self.id_at_location})"

    def __call__(self, *args: Any) -> Any:
        if len(args) != self.inputs:
            raise PlanError(
                tr(
                    "this plan takes {inputs} pointer(s), got {args_count}",
                    inputs=self.inputs,
                    args_count=len(args),
                )
            )
        for a in args:
            if not isinstance(a, PointerTensor):
                raise PlanError(
                    tr(
                        "a plan on {worker} runs on pointers to data there; send the tensor "
                        "first: `x.send({worker})`",
                        worker=self.location.id,
                    )
                )
            a._check_live()
            if a.location is not self.location:
                raise PlanError(
                    tr(
                        "the plan is on {worker} but an argument is on {worker_2}: send the plan "
                        "there too, `plan.send({worker_2})`",
                        worker=self.location.id,
                        worker_2=a.location.id,
                    )
                )
        if hasattr(self.location, "request"):  # a worker server: one message
            reply, _ = self.location.request(
                {
                    "command": "plan",
                    "action": "run",
                    "plan": self.id_at_location,
                    "args": [a.id_at_location for a in args],
                }
            )
            return self._pointers(reply, {a.id_at_location: a for a in args})
        return run_kept(
            self.location, self.id_at_location, args, self.location.execute, self.location.free
        )

    def _pointers(self, value: Any, inputs: dict[int, PointerTensor]) -> Any:
        if isinstance(value, dict) and "$obj" in value:
            ref = protocol.ref_from(value["$obj"])
            same = inputs.get(ref.id_at_location)
            if same is not None:  # an in-place plan returned its argument
                return same._refresh(ref.shape, ref.dtype)
            return PointerTensor(self.location, ref.id_at_location, ref.shape, ref.dtype)
        if isinstance(value, dict) and ("$list" in value or "$tuple" in value):
            return tuple(self._pointers(v, inputs) for v in next(iter(value.values())))
        return protocol.decode(value, _no_ref)

    def __del__(self) -> None:
        if not hasattr(self.location, "request"):
            forget(self.location, self.id_at_location)


def _no_ref(obj_id: int) -> Any:
    raise ProtocolError(tr("a reply may not name objects without describing them"))


def send_graph(graph: PlanGraph, worker: Any) -> PlanPointer:
    """Send a plan's graph and state to `worker`, as JSON and tensors, on either kind of
    worker; the worker checks it with `PlanGraph.from_json` before keeping anything."""
    header, tensors = graph.to_json()
    if hasattr(worker, "request"):
        reply, _ = worker.request({"command": "plan", "action": "send", "plan": header}, tensors)
        return PlanPointer(worker, reply["plan"], graph.inputs)
    # In this process too, only what the wire would carry crosses over.
    header, tensors = protocol.unpack(protocol.pack({"plan": header}, tensors))

    def hold(t: torch.Tensor) -> PointerTensor:
        return worker.receive(t)

    return PlanPointer(worker, keep(worker, header["plan"], tensors, hold), graph.inputs)


# ---- what a learner writes -------------------------------------------------------------------


class Plan(nn.Module):
    """A function or module built once into a graph, to send to workers and run there.

    Subclass it like `nn.Module` (define `forward`) or make one with `@func2plan()`.
    """

    def __init__(
        self,
        function: Callable[..., Any] | None = None,
        state: Sequence[torch.Tensor] = (),
        name: str | None = None,
    ) -> None:
        super().__init__()
        self._function = function
        self._state = State(state)
        self.name = name or getattr(function, "__name__", type(self).__name__)
        self.graph: PlanGraph | None = None
        self._sent: dict[int, PlanPointer] = {}  # id(worker) -> the plan there

    def __repr__(self) -> str:
        built = "built" if self.is_built else "not built"
        return f"<Plan {self.name} ({built})>"

    @property
    def is_built(self) -> bool:
        return self.graph is not None

    @property
    def state(self) -> State:
        return self._state

    def forward(self, *args: Any) -> Any:
        if self._function is None:
            raise NotImplementedError(tr("define forward(self, ...) in your Plan subclass"))
        if self._state.tensors:
            return self._function(*args, self._state)
        return self._function(*args)

    def build(self, *args: torch.Tensor) -> Any:
        """Trace on example tensors; returns what the function gives on them."""
        if not args or not all(
            isinstance(a, torch.Tensor) and not isinstance(a, PointerTensor) for a in args
        ):
            raise PlanError(
                tr("build a plan with local example tensors, e.g. plan.build(torch.zeros(1, 4))")
            )
        if self._function is not None:
            graph = trace(self._function, args, self._state.tensors)
        else:
            graph = trace(type(self).forward, args, (), module=self)
        self.graph, self._sent = graph, {}
        return self._run_here(args)

    def send(self, *workers: Any) -> PlanPointer:
        """Send the plan to each worker; returns a pointer to it (the last one's)."""
        if self.graph is None:
            raise PlanError(
                tr("build the plan first: {name}.build(example_tensor)", name=self.name)
            )
        if not workers:
            raise PlanError(tr("send() needs a worker, e.g. plan.send(bob)"))
        pointer = None
        for worker in workers:
            pointer = send_graph(self.graph, worker)
            self._sent[id(worker)] = pointer
        return pointer  # type: ignore[return-value]

    def __call__(self, *args: Any) -> Any:
        pointers = [a for a in args if isinstance(a, PointerTensor)]
        if pointers:
            where = pointers[0].location
            sent = self._sent.get(id(where))
            if sent is None or sent.location is not where:
                raise PlanError(
                    tr(
                        "{name} is not on {where}: `{name}.send({where})` first",
                        name=self.name,
                        where=where.id,
                    )
                )
            return sent(*args)
        if self.graph is None:
            self.build(*args)
        return self._run_here(args)

    def _run_here(self, args: Sequence[torch.Tensor]) -> Any:
        """Run the graph itself here, exactly as a worker will."""
        assert self.graph is not None
        return self.graph.run(list(args), self.graph.state, lambda f, a, k: f(*a, **k))


def func2plan(
    args_shape: Sequence[Sequence[int]] | Callable[..., Any] | None = None,
    state: Sequence[torch.Tensor] = (),
) -> Any:
    """`@sy.func2plan()`: the function becomes a `Plan`; with `args_shape` it is built at
    once on zeros of those shapes, else on the first call or `plan.build(...)`.
    `@sy.func2plan` without parentheses works too."""
    if callable(args_shape):  # used without parentheses: args_shape is the function
        return Plan(args_shape, state=state)
    shapes = args_shape

    def decorate(function: Callable[..., Any]) -> Plan:
        plan = Plan(function, state=state)
        if shapes is not None:
            plan.build(*(torch.zeros(*shape) for shape in shapes))
        return plan

    return decorate
