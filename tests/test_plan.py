"""Plans: traced once, sent once, run on a virtual worker and on a worker server, with
the same results as the function they came from; and refused when they carry anything
but allow-listed torch operations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import federated as sy
from federated import plan as plans
from federated.protocol import ProtocolError
from tests.helpers import assert_same_state, snapshot, workers

TOKEN = "plan-test-token"


# ---- our own functions and modules to trace ---------------------------------------------


def scaled_shift(x, state):
    (shift,) = state.read()
    doubled = x * 2
    return torch.abs(doubled - shift) + 0.5


def many_shapes(x, y):
    """Operators with the tensor on either side, a tuple result, shape arithmetic,
    attribute reads and indexing: every path of the fx conversion."""
    grown = 1.5 - x + y.sum()
    scaled = grown * x.size(0) / 4
    top = torch.max(scaled, dim=1)[0]
    positive = (3 > scaled).float()  # noqa: SIM300 - the tensor on the right, on purpose
    return F.relu(scaled).view(-1), top, positive, x.T[1], -(scaled[:, 0] ** 2)


class TwoLayers(sy.Plan):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(3, 5)
        self.second = nn.Linear(5, 2)

    def forward(self, x):
        return F.log_softmax(self.second(torch.tanh(self.first(x))), dim=1)


@pytest.fixture(scope="module")
def server():
    with sy.WorkerProcess("carol", token=TOKEN) as process:
        yield process


@pytest.fixture
def carol(server):
    worker = sy.RemoteWorker(
        sy.TorchHook(torch), id="carol", port=server.port, token=TOKEN, timeout=20
    )
    yield worker
    worker.flush()
    worker.close()


@pytest.fixture(params=["virtual", "remote"])
def worker(request):
    if request.param == "virtual":
        return workers("dana")[0]
    return request.getfixturevalue("carol")


def _ids(worker) -> set[int]:
    return set(worker.objects)


# ---- building ----------------------------------------------------------------------------


def test_func2plan_with_args_shape_is_built_at_once_and_runs_here():
    shift = torch.tensor([3.0])
    plan = sy.func2plan(args_shape=[(2,)], state=(shift,))(scaled_shift)
    assert plan.is_built
    x = torch.tensor([-1.0, 4.0])
    assert torch.equal(plan(x), scaled_shift(x, plans.State([shift])))
    assert plan.graph.inputs == 1 and len(plan.graph.state) == 1
    assert [op["op"] for op in plan.graph.ops] == [
        "Tensor.__mul__",
        "Tensor.__sub__",
        "torch.abs",
        "Tensor.__add__",
    ]


def test_func2plan_without_shape_builds_on_build():
    plan = sy.func2plan()(many_shapes)
    assert not plan.is_built
    x, y = torch.randn(3, 2), torch.randn(4)
    built = plan.build(x, y)
    assert plan.is_built
    for got, want in zip(built, many_shapes(x, y)):
        assert torch.allclose(got, want)
    x2, y2 = torch.randn(3, 2), torch.randn(4)  # the graph, not the example, decides
    for got, want in zip(plan(x2, y2), many_shapes(x2, y2)):
        assert torch.allclose(got, want)


def test_func2plan_without_parentheses():
    @sy.func2plan
    def halve(x):
        return x / 2

    assert isinstance(halve, sy.Plan) and not halve.is_built
    assert torch.equal(halve(torch.tensor([4.0, -2.0])), torch.tensor([2.0, -1.0]))
    assert halve.is_built


def test_the_graph_is_plain_json_naming_allow_listed_ops():
    import json

    plan = sy.func2plan(args_shape=[(3, 2), (4,)])(many_shapes)
    header, tensors = plan.graph.to_json()
    assert json.loads(json.dumps(header)) == header
    assert tensors == {}
    names = {op["op"] for op in header["ops"]}
    assert {
        "Tensor.__rsub__",
        "torch.max",
        "$item",
        "Tensor.__lt__",
        "F.relu",
        "Tensor.T.__get__",
    } <= names


# ---- running on workers ----------------------------------------------------------------


def test_plan_on_a_worker_gives_the_function_s_outputs(worker):
    plan = sy.func2plan(args_shape=[(3, 2), (4,)])(many_shapes)
    x, y = torch.randn(3, 2), torch.randn(4)
    plan_ptr = plan.send(worker)
    before = _ids(worker)
    xp, yp = x.send(worker), y.send(worker)
    results = plan_ptr(xp, yp)
    assert all(isinstance(r, sy.PointerTensor) and r.location is worker for r in results)
    # Only the arguments and the five results are new: intermediates were freed.
    assert len(_ids(worker) - before) == 2 + 5
    for got, want in zip(results, many_shapes(x, y)):
        assert torch.allclose(got.get(), want)


def test_state_travels_with_the_plan(worker):
    shift = torch.tensor([3.0, -1.0])
    plan = sy.func2plan(args_shape=[(2,)], state=(shift,))(scaled_shift)
    before = _ids(worker)
    plan_ptr = plan.send(worker)
    (state_id,) = _ids(worker) - before
    assert tuple(worker.objects[state_id].shape) == (2,)
    x = torch.tensor([0.25, 7.0])
    result = plan_ptr(x.send(worker)).get()
    assert torch.equal(result, scaled_shift(x, plans.State([shift])))
    shift.add_(100)  # the worker's copy is the one the plan uses
    assert torch.equal(plan_ptr(x.send(worker)).get(), result)


def test_calling_the_plan_itself_on_pointers_after_send(worker):
    plan = sy.func2plan(args_shape=[(2,)], state=(torch.tensor([1.0]),))(scaled_shift)
    x = torch.tensor([-2.0, 2.0]).send(worker)
    with pytest.raises(sy.PlanError, match="send"):
        plan(x)
    plan.send(worker)
    assert torch.equal(plan(x).get(), torch.tensor([5.5, 3.5]))


def test_a_module_plan_matches_its_forward(worker):
    torch.manual_seed(5)
    net = TwoLayers()
    net.build(torch.zeros(4, 3))
    net_ptr = net.send(worker)
    data = torch.randn(6, 3)
    with torch.no_grad():
        want = nn.Module.__call__(net, data)
    got = net_ptr(data.send(worker)).get()
    assert torch.allclose(got, want, atol=1e-6)
    assert len(net.graph.state) == 4  # two weights, two biases


def test_a_plan_returning_its_state_returns_a_copy(worker):
    keep = torch.tensor([9.0])

    def echo(x, state):
        (kept,) = state.read()
        return x + 1, kept

    plan = sy.func2plan(args_shape=[(1,)], state=(keep,))(echo)
    plan_ptr = plan.send(worker)
    x = torch.tensor([1.0]).send(worker)
    first, kept = plan_ptr(x)
    assert torch.equal(kept.get(), keep)
    again = plan_ptr(x)  # the state is still there
    assert torch.equal(again[1].get(), keep) and torch.equal(again[0].get(), first.get())


def test_a_plan_on_another_worker_s_data_is_refused():
    bob, alice = workers("bob", "alice")
    plan = sy.func2plan(args_shape=[(1,)], state=(torch.ones(1),))(scaled_shift)
    plan_ptr = plan.send(bob)
    with pytest.raises(sy.PlanError, match="alice"):
        plan_ptr(torch.ones(1).send(alice))
    with pytest.raises(sy.PlanError, match="send the tensor"):
        plan_ptr(torch.ones(1))


def test_a_failing_plan_leaves_the_worker_as_it_was(worker):
    def project(x, state):
        (w,) = state.read()
        return (x * 2) @ w

    plan = sy.func2plan(args_shape=[(3,)], state=(torch.ones(3, 2),))(project)
    plan_ptr = plan.send(worker)
    wrong = torch.ones(4).send(worker)  # x * 2 runs, then the product fails
    before = _ids(worker)
    with pytest.raises(RuntimeError):
        plan_ptr(wrong)
    import gc

    gc.collect()
    assert _ids(worker) == before


def test_private_data_in_a_plan_meets_the_same_policy_as_single_calls():
    (bob,) = workers("bob")
    data = bob.load(torch.arange(6.0), private=True)

    def copy_and_total(x):
        return x * 1, x.sum()

    plan = sy.func2plan(args_shape=[(6,)])(copy_and_total)
    plan_ptr = plan.send(bob)
    copied, total = plan_ptr(data)
    single_copied, single_total = data * 1, data.sum()
    for from_plan, single in ((copied, single_copied), (total, single_total)):
        outcomes = []
        for pointer in (from_plan, single):
            try:
                pointer.get()
                outcomes.append("left")
            except sy.PrivateDataError:
                outcomes.append("refused")
        assert outcomes[0] == outcomes[1]
    assert bob.is_private(copied.id_at_location)


# ---- what a plan may not do ------------------------------------------------------------


def _graph(ops, inputs=1, state=0, output=None):
    return {
        "inputs": inputs,
        "state": state,
        "ops": ops,
        "output": output if output is not None else {"$ref": inputs + state},
    }


FORBIDDEN = {
    "python builtin": _graph([{"op": "builtins.eval", "args": {"$tuple": ["1"]}}]),
    "module function": _graph([{"op": "os.system", "args": {"$tuple": ["true"]}}]),
    "torch.load": _graph([{"op": "torch.load", "args": {"$tuple": ["/etc/passwd"]}}]),
    "getattr": _graph([{"op": "builtins.getattr", "args": {"$tuple": [{"$ref": 0}, "__class__"]}}]),
    "class attribute": _graph([{"op": "Tensor.__class__", "args": {"$tuple": [{"$ref": 0}]}}]),
    "pickling": _graph([{"op": "Tensor.__reduce_ex__", "args": {"$tuple": [{"$ref": 0}, 2]}}]),
    "to numpy": _graph([{"op": "Tensor.numpy", "args": {"$tuple": [{"$ref": 0}]}}]),
    "hook": _graph([{"op": "Tensor.register_hook", "args": {"$tuple": [{"$ref": 0}, "x"]}}]),
    "op name not a string": _graph([{"op": ["torch", "add"], "args": {"$tuple": []}}]),
    "later slot": _graph([{"op": "torch.abs", "args": {"$tuple": [{"$ref": 1}]}}]),
    "negative slot": _graph([{"op": "torch.abs", "args": {"$tuple": [{"$ref": -1}]}}]),
    "unknown field": _graph(
        [{"op": "torch.abs", "args": {"$tuple": [{"$ref": 0}]}, "code": "print(1)"}]
    ),
    "not a schema value": _graph(
        [{"op": "torch.abs", "args": {"$tuple": [{"$pickle": "gASVAAAA"}]}}]
    ),
    "bad item": _graph([{"op": "$item", "of": 5, "index": 0}]),
    "output names nothing": _graph([], output={"$ref": 3}),
    "too long": _graph(
        [{"op": "torch.abs", "args": {"$tuple": [{"$ref": 0}]}}] * (plans.MAX_OPS + 1)
    ),
    "missing state": _graph([], state=1, output={"$ref": 0}),
}


@pytest.mark.parametrize("name", sorted(FORBIDDEN))
def test_a_plan_carrying_a_forbidden_op_is_refused_and_changes_nothing(name):
    (bob,) = workers("bob")
    bob.load(torch.ones(2), tag="#x")
    before = snapshot(bob)
    with pytest.raises(ProtocolError):
        plans.keep(bob, FORBIDDEN[name], {}, bob.receive)
    assert_same_state(before, bob)


def test_a_worker_keeps_a_bounded_number_of_plans_and_refuses_more_changing_nothing(
    monkeypatch,
):
    """Sending plans without end must not fill a worker's memory (a denial of service)."""
    monkeypatch.setattr(plans, "MAX_KEPT", 2)
    (bob,) = workers("bob")
    plan = sy.func2plan(args_shape=[(2,)], state=(torch.tensor([3.0]),))(scaled_shift)
    header, tensors = plan.graph.to_json()
    kept = [plans.keep(bob, header, tensors, bob.receive) for _ in range(2)]
    before = snapshot(bob)
    with pytest.raises(sy.PlanError, match="2 plans already"):
        plans.keep(bob, header, tensors, bob.receive)
    assert_same_state(before, bob)
    plans.forget(bob, kept[0])
    plans.keep(bob, header, tensors, bob.receive)  # room again once one is freed


def test_a_worker_server_refuses_a_forbidden_plan(carol):
    before = _ids(carol)
    for name in ("python builtin", "getattr", "pickling", "later slot", "not a schema value"):
        with pytest.raises(ProtocolError, match="carol"):
            carol.request({"command": "plan", "action": "send", "plan": FORBIDDEN[name]})
    with pytest.raises(sy.FederatedError, match="no plan"):
        carol.request({"command": "plan", "action": "run", "plan": 12345, "args": []})
    assert _ids(carol) == before


def test_a_plan_cannot_name_objects_it_was_not_given():
    """Slots are the plan's own; a reference is never an id in the worker's store."""
    (bob,) = workers("bob")
    secret = bob.load(torch.tensor([42.0]), private=True)
    graph = _graph([{"op": "torch.clone", "args": {"$tuple": [{"$ref": 0}]}}])
    plan_id = plans.keep(bob, graph, {}, bob.receive)
    mine = torch.tensor([1.0]).send(bob)
    out = plans.run_kept(bob, plan_id, [mine], bob.execute, bob.free)
    assert torch.equal(out.get(), torch.tensor([1.0]))
    assert secret.id_at_location != mine.id_at_location


@pytest.mark.parametrize(
    "function, message",
    [
        (lambda x: x.sum().item() + x, "plain Python value"),
        (lambda x: torch.tensor(x.tolist()), "cannot be traced"),
        (lambda x: x.numpy(), "numpy"),
        (lambda x: x * 2 if x.sum() > 0 else x, "cannot be traced"),
    ],
)
def test_functions_that_cannot_be_plans_say_why(function, message):
    plan = sy.func2plan()(function)
    with pytest.raises(sy.PlanError, match=message):
        plan.build(torch.ones(3))
    assert not plan.is_built


def test_build_needs_local_example_tensors():
    (bob,) = workers("bob")
    plan = sy.func2plan()(lambda x: x + 1)
    with pytest.raises(sy.PlanError, match="example"):
        plan.build(torch.ones(2).send(bob))
    with pytest.raises(sy.PlanError, match="build"):
        plan.send(bob)
