"""Pointers to tensors: sending, fetching, moving, computing through them, and their errors."""

from __future__ import annotations

import operator

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import federated as sy
from tests.helpers import assert_same_state, cases, held, snapshot, workers

# ---- send / get / location ---------------------------------------------------------------


def test_send_returns_a_pointer_and_the_worker_holds_a_copy():
    (bob,) = workers("bob")
    x = torch.tensor([[1.0], [2.0]])
    p = x.send(bob)
    assert isinstance(p, sy.PointerTensor)
    assert p.location is bob
    assert p.id_at_location == 1
    assert list(bob.objects) == [1]
    assert torch.equal(bob.objects[1], torch.tensor([[1.0], [2.0]]))
    assert bob.objects[1] is not x
    x.add_(100)  # the local tensor changes, bob's copy does not
    assert torch.equal(bob.objects[1], torch.tensor([[1.0], [2.0]]))
    x[0, 0] = -5.0
    assert torch.equal(p.get(), torch.tensor([[1.0], [2.0]]))


def test_send_keeps_requires_grad_and_makes_a_leaf_on_the_worker():
    (bob,) = workers("bob")
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    p = (x * 1).send(bob)  # a non-leaf here becomes a leaf there
    real = held(bob, p)
    assert real.requires_grad
    assert real.is_leaf
    assert real.grad_fn is None
    assert not held(bob, torch.tensor([1.0]).send(bob)).requires_grad


def test_ids_are_deterministic_per_worker():
    bob, alice = workers("bob", "alice")
    ptrs = [torch.tensor([float(i)]).send(bob) for i in range(3)]
    assert [p.id_at_location for p in ptrs] == [1, 2, 3]
    assert torch.tensor([0.0]).send(alice).id_at_location == 1
    (carol,) = workers("carol")  # a new worker starts again at 1
    assert torch.tensor([0.0]).send(carol).id_at_location == 1
    assert sorted(bob.objects) == [1, 2, 3]


def test_repr_names_worker_id_and_shape():
    (bob,) = workers("bob")
    torch.zeros(1).send(bob)  # dropped at once, but ids never repeat
    keep = torch.zeros(1).send(bob)
    p = torch.tensor([[1.0], [2.0]]).send(bob)
    assert repr(p) == "(Pointer bob:3 shape=(2, 1))"
    assert str(p) == "(Pointer bob:3 shape=(2, 1))"
    assert f"{p}" == "(Pointer bob:3 shape=(2, 1))"
    assert repr(keep) == "(Pointer bob:2 shape=(1,))"
    assert repr(torch.tensor(3.0).send(bob)) == "(Pointer bob:4 shape=())"


def test_get_returns_the_value_and_the_worker_forgets_it():
    (bob,) = workers("bob")
    other = torch.tensor([9.0]).send(bob)
    p = torch.tensor([1.0, 2.0, 3.0]).send(bob)
    pid = p.id_at_location
    value = p.get()
    assert type(value) is torch.Tensor
    assert torch.equal(value, torch.tensor([1.0, 2.0, 3.0]))
    assert pid not in bob.objects
    assert list(bob.objects) == [other.id_at_location]
    with pytest.raises(sy.StalePointerError, match="fetched"):
        p.get()
    assert list(bob.objects) == [other.id_at_location]


def test_location_and_id_at_location():
    bob, alice = workers("bob", "alice")
    torch.zeros(1).send(alice)
    p = torch.zeros(2).send(alice)
    q = torch.zeros(2).send(bob)
    assert p.location is alice
    assert p.id_at_location == 2
    assert q.location is bob
    assert q.id_at_location == 1


def test_send_of_a_pointer_makes_a_chain():
    bob, alice = workers("bob", "alice")
    p = torch.tensor([1.0, 2.0]).send(bob)
    chain = p.send(alice)
    assert chain.location is alice
    assert list(alice.objects) == [chain.id_at_location]
    middle = alice.objects[chain.id_at_location]
    assert isinstance(middle, sy.PointerTensor)
    assert middle.location is bob
    assert middle.id_at_location == 1
    assert torch.equal(bob.objects[1], torch.tensor([1.0, 2.0]))  # the value stays on bob
    assert chain.shape == (2,)
    with pytest.raises(sy.StalePointerError):  # the old pointer handed its ownership over
        p.get()
    # .get() on the chain brings back the middle pointer, .get() on that the value
    inner = chain.get()
    assert isinstance(inner, sy.PointerTensor)
    assert inner.location is bob
    assert len(alice.objects) == 0
    assert torch.equal(inner.get(), torch.tensor([1.0, 2.0]))
    assert len(bob.objects) == 0


def test_remote_get_collapses_a_chain():
    bob, alice = workers("bob", "alice")
    chain = torch.tensor([1.0, 2.0]).send(bob).send(alice)
    assert len(bob.objects) == 1
    same = chain.remote_get()
    assert same is chain
    assert chain.location is alice
    real = alice.objects[chain.id_at_location]
    assert type(real) is torch.Tensor
    assert torch.equal(real, torch.tensor([1.0, 2.0]))
    assert len(bob.objects) == 0
    assert list(alice.objects) == [chain.id_at_location]
    assert torch.equal(chain.get(), torch.tensor([1.0, 2.0]))
    assert len(alice.objects) == 0


def test_move_takes_the_object_to_the_other_worker_and_the_pointer_follows():
    bob, alice = workers("bob", "alice")
    torch.zeros(1).send(alice)
    keep = torch.zeros(1).send(alice)
    p = torch.tensor([[1.0, 2.0]]).send(bob)
    old_id = p.id_at_location
    moved = p.move(alice)
    assert moved is p
    assert p.location is alice
    assert old_id not in bob.objects
    assert len(bob.objects) == 0
    assert p.id_at_location == 3  # alice's next id
    assert sorted(alice.objects) == [keep.id_at_location, 3]
    assert torch.equal(alice.objects[3], torch.tensor([[1.0, 2.0]]))
    assert repr(p) == "(Pointer alice:3 shape=(1, 2))"
    assert torch.equal((p + 1).get(), torch.tensor([[2.0, 3.0]]))  # computes on alice now
    assert torch.equal(p.get(), torch.tensor([[1.0, 2.0]]))
    assert list(alice.objects) == [keep.id_at_location]


def test_move_to_its_own_worker_changes_nothing():
    (bob,) = workers("bob")
    p = torch.tensor([1.0]).send(bob)
    before = snapshot(bob)
    assert p.move(bob) is p
    assert p.id_at_location == 1
    assert_same_state(before, bob)


def test_move_of_a_local_tensor_sends_it():
    (bob,) = workers("bob")
    p = torch.tensor([4.0]).move(bob)
    assert isinstance(p, sy.PointerTensor)
    assert p.location is bob
    assert torch.equal(bob.objects[p.id_at_location], torch.tensor([4.0]))


def test_copy_makes_a_new_independent_remote_object():
    (bob,) = workers("bob")
    p = torch.tensor([1.0, 2.0, 3.0]).send(bob)
    c = p.copy()
    assert isinstance(c, sy.PointerTensor)
    assert c is not p
    assert c.location is bob
    assert c.id_at_location != p.id_at_location
    assert sorted(bob.objects) == [1, 2]
    assert held(bob, c) is not held(bob, p)
    c.add_(10)
    p.mul_(2)
    assert torch.equal(held(bob, p), torch.tensor([2.0, 4.0, 6.0]))
    assert torch.equal(held(bob, c), torch.tensor([11.0, 12.0, 13.0]))
    assert torch.equal(c.get(), torch.tensor([11.0, 12.0, 13.0]))
    assert torch.equal(p.get(), torch.tensor([2.0, 4.0, 6.0]))


def test_copy_of_a_local_tensor_is_detached_and_keeps_requires_grad():
    sy.TorchHook(torch)
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    c = x.copy()
    assert c is not x
    assert c.requires_grad and c.is_leaf
    assert torch.equal(c, x)
    with torch.no_grad():
        c.add_(1)
    assert torch.equal(x, torch.tensor([1.0, 2.0]))


def test_shape_and_dtype_are_known_locally_without_touching_the_worker():
    (bob,) = workers("bob")
    p = torch.zeros(3, 4, dtype=torch.float64).send(bob)
    i = torch.tensor([1, 2]).send(bob)
    before = snapshot(bob)
    assert p.shape == torch.Size([3, 4])
    assert p.dtype == torch.float64
    assert len(p) == 3
    assert p.size() == torch.Size([3, 4])
    assert p.size(1) == 4
    assert p.dim() == 2
    assert p.ndim == 2
    assert p.numel() == 12
    assert p.is_floating_point()
    assert i.dtype == torch.int64
    assert not i.is_floating_point()
    assert_same_state(before, bob)
    # no id was used up either: the next object is number 3
    assert torch.zeros(1).send(bob).id_at_location == 3


# ---- computing through pointers ------------------------------------------------------------

A = torch.tensor([[1.0, -2.0], [3.0, 4.0]])
B = torch.tensor([[0.5, 2.0], [-1.0, 3.0]])

BINARY = {
    "torch.add": torch.add,
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "@": operator.matmul,
    "torch.matmul": torch.matmul,
    "Tensor.sub": torch.Tensor.sub,
    "torch.maximum": torch.maximum,
    ">": operator.gt,
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_ops_run_on_the_worker(name):
    (bob,) = workers("bob")
    op = BINARY[name]
    a, b = A.send(bob), B.send(bob)
    inputs = snapshot(bob)
    r = op(a, b)
    assert isinstance(r, sy.PointerTensor)
    assert r.location is bob
    assert r.id_at_location == 3
    expected = op(A, B)
    assert torch.equal(held(bob, r), expected)
    assert r.shape == expected.shape and r.dtype == expected.dtype
    # the operands are untouched, and exactly one object was added
    assert sorted(bob.objects) == [1, 2, 3]
    assert torch.equal(r.get(), expected)
    assert_same_state(inputs, bob)


UNARY = {
    "sum": lambda t: t.sum(),
    "torch.sum dim": lambda t: torch.sum(t, dim=0),
    "mean": lambda t: t.mean(),
    "mean dim keepdim": lambda t: t.mean(dim=1, keepdim=True),
    "relu": lambda t: t.relu(),
    "torch.relu": torch.relu,
    "F.relu": F.relu,
    "neg": operator.neg,
    "pow": lambda t: t**2,
    "t": lambda t: t.t(),
    "T": lambda t: t.T,
    "index": lambda t: t[0],
    "slice": lambda t: t[:, 1:],
    "view": lambda t: t.view(4),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_ops_and_methods_run_on_the_worker(name):
    (bob,) = workers("bob")
    f = UNARY[name]
    p = A.send(bob)
    r = f(p)
    assert isinstance(r, sy.PointerTensor)
    assert r.location is bob
    assert r.id_at_location == 2
    expected = f(A)
    assert r.shape == expected.shape
    assert torch.equal(r.get(), expected)
    assert torch.equal(held(bob, p), A)


def test_f_linear_runs_on_the_worker():
    (bob,) = workers("bob")
    x, w, b = A, torch.tensor([[1.0, 0.5], [-1.0, 2.0], [0.0, 1.0]]), torch.tensor([0.1, 0.2, 0.3])
    r = F.linear(x.send(bob), w.send(bob), b.send(bob))
    assert r.location is bob
    assert r.shape == (2, 3)
    assert torch.allclose(r.get(), F.linear(x, w, b))
    r2 = F.linear(x.send(bob), w.send(bob))  # without bias
    assert torch.allclose(r2.get(), F.linear(x, w))


def test_f_cross_entropy_runs_on_the_worker():
    (bob,) = workers("bob")
    logits = torch.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0]])
    y = torch.tensor([2, 0])
    r = F.cross_entropy(logits.send(bob), y.send(bob))
    assert r.location is bob
    assert r.shape == ()
    assert torch.allclose(r.get(), F.cross_entropy(logits, y))
    r = F.cross_entropy(logits.send(bob), y.send(bob), reduction="none")
    assert torch.allclose(r.get(), F.cross_entropy(logits, y, reduction="none"))


def test_cat_of_a_list_of_pointers():
    (bob,) = workers("bob")
    p, q = A.send(bob), B.send(bob)
    r = torch.cat([p, q])
    assert isinstance(r, sy.PointerTensor)
    assert r.shape == (4, 2)
    assert torch.equal(r.get(), torch.cat([A, B]))
    r = torch.cat((p, q), dim=1)
    assert torch.equal(r.get(), torch.cat((A, B), dim=1))
    r = torch.stack([p, q])
    assert torch.equal(r.get(), torch.stack([A, B]))


def test_chunk_and_unbind_return_tuples_of_pointers():
    (bob,) = workers("bob")
    p = torch.arange(6.0).reshape(3, 2).send(bob)
    chunks = p.chunk(3)
    assert type(chunks) is tuple
    assert len(chunks) == 3
    assert all(isinstance(c, sy.PointerTensor) and c.location is bob for c in chunks)
    assert [c.shape for c in chunks] == [torch.Size([1, 2])] * 3
    assert [c.get().tolist() for c in chunks] == [[[0.0, 1.0]], [[2.0, 3.0]], [[4.0, 5.0]]]
    rows = torch.unbind(p)
    assert type(rows) is tuple and len(rows) == 3
    assert [r.get().tolist() for r in rows] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    cols = p.unbind(1)
    assert [c.get().tolist() for c in cols] == [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]
    assert [r.get().tolist() for r in p] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]  # iteration


def test_max_with_dim_returns_values_and_indices_pointers():
    (bob,) = workers("bob")
    p = A.send(bob)
    result = torch.max(p, dim=1)
    assert isinstance(result.values, sy.PointerTensor)
    assert isinstance(result.indices, sy.PointerTensor)
    assert result.values.location is bob and result.indices.location is bob
    assert result.indices.dtype == torch.int64
    values, indices = result  # unpacks like torch's
    assert values is result.values and indices is result.indices
    expected = torch.max(A, dim=1)
    assert torch.equal(result.values.get(), expected.values)
    assert torch.equal(result.indices.get(), expected.indices)
    m = p.max(dim=0)
    assert torch.equal(m[0].get(), A.max(dim=0)[0])
    assert torch.equal(m[1].get(), A.max(dim=0)[1])
    assert torch.equal(torch.max(p).get(), torch.max(A))


@cases(
    "f",
    [
        ("p * 2", lambda t: t * 2),
        ("2 * p", lambda t: 2 * t),
        ("p + 1.5", lambda t: t + 1.5),
        ("1 - p", lambda t: 1 - t),
        ("p / 4", lambda t: t / 4),
        ("2 / p", lambda t: 2 / t),
        ("p ** 2", lambda t: t**2),
        ("torch.add(p, 3)", lambda t: torch.add(t, 3)),
        ("p.add(1, alpha=2)", lambda t: t.add(1, alpha=2)),
    ],
)
def test_python_scalars_pass_through(f):
    (bob,) = workers("bob")
    p = A.send(bob)
    r = f(p)
    assert isinstance(r, sy.PointerTensor) and r.location is bob
    assert torch.allclose(r.get(), f(A))
    assert torch.equal(held(bob, p), A)


@cases(
    "f, expected",
    [
        ("add_", lambda t: t.add_(1), torch.tensor([2.0, 3.0, 4.0])),
        ("mul_", lambda t: t.mul_(3), torch.tensor([3.0, 6.0, 9.0])),
        ("+=", lambda t: operator.iadd(t, 2), torch.tensor([3.0, 4.0, 5.0])),
        ("unsqueeze_", lambda t: t.unsqueeze_(0), torch.tensor([[1.0, 2.0, 3.0]])),
    ],
)
def test_in_place_ops_return_the_same_pointer_and_add_no_object(f, expected):
    (bob,) = workers("bob")
    p = torch.tensor([1.0, 2.0, 3.0]).send(bob)
    real = held(bob, p)
    r = f(p)
    assert r is p
    assert p.id_at_location == 1
    assert list(bob.objects) == [1]
    assert bob.objects[1] is real  # changed in place, on bob
    assert torch.equal(real, expected)
    assert p.shape == expected.shape  # the pointer's metadata follows
    assert repr(p) == f"(Pointer bob:1 shape={tuple(expected.shape)})"
    assert torch.equal(p.get(), expected)
    assert len(bob.objects) == 0


def test_in_place_op_with_another_pointer():
    (bob,) = workers("bob")
    p, q = A.send(bob), B.send(bob)
    assert p.add_(q) is p
    assert sorted(bob.objects) == [1, 2]
    assert torch.equal(held(bob, p), A + B)
    assert torch.equal(held(bob, q), B)


@settings(max_examples=30, deadline=None, database=None)
@given(
    xs=st.lists(st.floats(-100, 100, allow_nan=False, width=32), min_size=1, max_size=6),
    op=st.sampled_from([operator.add, operator.sub, operator.mul, torch.maximum]),
)
def test_elementwise_ops_match_local_torch(xs, op):
    (bob,) = workers("bob")
    x = torch.tensor(xs)
    y = torch.tensor(xs[::-1])
    r = op(x.send(bob), y.send(bob))
    assert r.id_at_location == 3
    assert torch.equal(r.get(), op(x, y))


# ---- autograd on the worker ---------------------------------------------------------------


def test_backward_on_a_pointer_gives_the_local_gradients():
    (bob,) = workers("bob")
    w = torch.tensor([[1.0, 2.0], [3.0, -4.0]], requires_grad=True)
    b = torch.tensor([0.5, -0.5], requires_grad=True)
    x = torch.tensor([[1.0, -1.0], [0.5, 2.0], [1.0, 1.0]])
    y = torch.tensor([1, 0, 1])
    wp, bp, xp, yp = w.send(bob), b.send(bob), x.send(bob), y.send(bob)
    assert wp.grad is None
    loss = F.cross_entropy(F.relu(xp @ wp + bp), yp) + (wp * wp).sum() * 0.1
    assert loss.requires_grad
    assert loss.backward() is None
    local = F.cross_entropy(F.relu(x @ w + b), y) + (w * w).sum() * 0.1
    local.backward()
    gw, gb = wp.grad, bp.grad
    assert isinstance(gw, sy.PointerTensor) and gw.location is bob
    assert gw.shape == (2, 2)
    assert torch.allclose(held(bob, gw), w.grad)
    assert held(bob, gw) is held(bob, wp).grad  # the worker's own gradient
    assert torch.allclose(gb.get(), b.grad)
    assert torch.allclose(gw.get(), w.grad)
    assert torch.allclose(loss.get(), local)
    assert xp.grad is None  # no requires_grad, no gradient


def test_grad_pointer_is_reused_between_reads():
    (bob,) = workers("bob")
    wp = torch.tensor([1.0, 2.0], requires_grad=True).send(bob)
    (wp * wp).sum().backward()
    g = wp.grad
    n = len(bob.objects)
    assert wp.grad is g
    assert wp.grad is g
    assert len(bob.objects) == n
    assert torch.equal(g.get(), torch.tensor([2.0, 4.0]))


def test_gradients_accumulate_like_local_ones():
    (bob,) = workers("bob")
    w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    wp = w.send(bob)
    for k in (1.0, 2.0):
        (wp * wp * k).sum().backward()
        (w * w * k).sum().backward()
    assert torch.equal(wp.grad.get(), w.grad)
    assert torch.equal(w.grad, torch.tensor([6.0, -12.0, 18.0]))


def test_setting_grad_to_none_clears_it_on_the_worker():
    (bob,) = workers("bob")
    wp = torch.tensor([1.0, 2.0], requires_grad=True).send(bob)
    (wp * 3).sum().backward()
    assert torch.equal(wp.grad.copy().get(), torch.tensor([3.0, 3.0]))
    wp.grad = None
    assert wp.grad is None
    assert held(bob, wp).grad is None


def test_zero_grad_leaves_nothing_on_the_worker_and_the_next_gradient_is_right():
    (bob,) = workers("bob")
    wp = torch.tensor([1.0, 2.0], requires_grad=True).send(bob)
    (wp * 3).sum().backward()
    assert wp.grad is not None
    n = len(bob.objects)
    wp.grad = None  # what zero_grad does
    assert len(bob.objects) == n - 1  # the old gradient is gone from bob's table
    (wp * wp).sum().backward()
    assert torch.equal(wp.grad.copy().get(), torch.tensor([2.0, 4.0]))
    assert held(bob, wp.grad) is held(bob, wp).grad


def test_a_gradient_pointer_kept_across_zero_grad_keeps_the_old_gradient():
    (bob,) = workers("bob")
    wp = torch.tensor([1.0, 2.0], requires_grad=True).send(bob)
    (wp * 3).sum().backward()
    old = wp.grad
    wp.grad = None
    (wp * wp).sum().backward()
    new = wp.grad
    assert new is not old
    assert torch.equal(old.get(), torch.tensor([3.0, 3.0]))  # as a kept local tensor would
    assert torch.equal(new.get(), torch.tensor([2.0, 4.0]))


def test_a_learners_gradient_pointer_keeps_its_value_across_later_steps():
    """`g = p.grad` behaves as with a local tensor, whatever else holds the pointer."""
    (bob,) = workers("bob")
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    wp = w.send(bob)
    opt, ref_opt = torch.optim.SGD([wp], lr=0.1), torch.optim.SGD([w], lr=0.1)
    kept, ref_kept = [], []
    for k in (3.0, 5.0, 7.0):
        for param, o, into in ((wp, opt, kept), (w, ref_opt, ref_kept)):
            o.zero_grad()
            (param * param * k).sum().backward()
            o.step()
            g = param.grad  # a learner keeps each step's gradient
            into.append(g)
    for g, ref in zip(kept, ref_kept):
        assert torch.equal(held(bob, g), ref)
    assert [g.get().tolist() for g in kept] == [r.tolist() for r in ref_kept]


def test_gradient_pointers_of_a_long_loop_leave_nothing_behind():
    (bob,) = workers("bob")
    wp = torch.tensor([1.0, 2.0], requires_grad=True).send(bob)
    opt = torch.optim.SGD([wp], lr=0.1)
    for _ in range(20):
        opt.zero_grad()
        (wp * wp).sum().backward()
        opt.step()
    opt.zero_grad()
    assert list(bob.objects) == [wp.id_at_location]


# ---- errors: a clear message and no change on any worker -----------------------------------


def _two_workers_with_data():
    bob, alice = workers("bob", "alice")
    a = torch.tensor([1.0, 2.0, 3.0]).send(alice)
    b = torch.tensor([4.0, 5.0, 6.0]).send(bob)
    return bob, alice, a, b


@cases(
    "f",
    [
        ("a + b", lambda a, b: a + b),
        ("b * a", lambda a, b: b * a),
        ("torch.add", lambda a, b: torch.add(a, b)),
        ("torch.cat", lambda a, b: torch.cat([a, b])),
        ("add_", lambda a, b: a.add_(b)),
        ("torch.dot", lambda a, b: torch.dot(a, b)),
        ("kwarg", lambda a, b: torch.add(a, other=b)),
    ],
)
def test_mixing_workers_raises_worker_mismatch_and_changes_nothing(f):
    bob, alice, a, b = _two_workers_with_data()
    before_bob, before_alice = snapshot(bob), snapshot(alice)
    with pytest.raises(sy.WorkerMismatchError) as info:
        f(a, b)
    message = str(info.value)
    assert "bob" in message and "alice" in message
    assert_same_state(before_bob, bob)
    assert_same_state(before_alice, alice)
    assert a.location is alice and b.location is bob


@cases(
    "f",
    [
        ("p + local", lambda p: p + torch.ones(3)),
        ("local + p", lambda p: torch.ones(3) + p),
        ("p * local scalar tensor", lambda p: p * torch.tensor(2.0)),
        ("torch.add", lambda p: torch.add(p, torch.ones(3))),
        ("torch.cat", lambda p: torch.cat([p, torch.ones(3)])),
        ("add_", lambda p: p.add_(torch.ones(3))),
        ("local add_", lambda p: torch.ones(3).add_(p)),
        ("F.linear", lambda p: F.linear(p, torch.ones(2, 3))),
    ],
)
def test_mixing_a_pointer_with_a_local_tensor_raises_local_tensor_error(f):
    bob, alice, a, b = _two_workers_with_data()
    before_bob, before_alice = snapshot(bob), snapshot(alice)
    with pytest.raises(sy.LocalTensorError) as info:
        f(a)
    message = str(info.value)
    assert ".send(" in message
    assert "alice" in message
    assert_same_state(before_bob, bob)
    assert_same_state(before_alice, alice)


def test_get_of_an_already_fetched_pointer_raises_stale_pointer_error():
    bob, alice, a, b = _two_workers_with_data()
    assert torch.equal(b.get(), torch.tensor([4.0, 5.0, 6.0]))
    before_bob, before_alice = snapshot(bob), snapshot(alice)
    with pytest.raises(sy.StalePointerError) as info:
        b.get()
    assert "fetched" in str(info.value)
    for use in (lambda: b + 1, lambda: b.move(alice), lambda: b.copy(), lambda: b.send(alice)):
        with pytest.raises(sy.StalePointerError):
            use()
    assert_same_state(before_bob, bob)
    assert_same_state(before_alice, alice)


def test_get_of_a_freed_object_raises_object_not_found():
    bob, alice, a, b = _two_workers_with_data()
    bob.clear_objects()
    assert len(bob.objects) == 0
    before_alice = snapshot(alice)
    with pytest.raises(sy.ObjectNotFoundError) as info:
        b.get()
    assert "bob" in str(info.value)
    assert str(b.id_at_location) in str(info.value)
    with pytest.raises(sy.ObjectNotFoundError):
        b + b
    with pytest.raises(sy.ObjectNotFoundError):
        b.move(alice)
    assert len(bob.objects) == 0
    assert_same_state(before_alice, alice)


@cases(
    "f",
    [
        (".item()", lambda p: p.item()),
        ("float(p)", float),
        ("bool(p)", bool),
        ("int(p)", int),
        (".tolist()", lambda p: p.tolist()),
        (".numpy()", lambda p: p.numpy()),
        ("if p", lambda p: 1 if p else 0),
    ],
)
def test_revealing_a_remote_value_raises_reveal_error(f):
    (bob,) = workers("bob")
    p = torch.tensor([2.5]).send(bob)
    before = snapshot(bob)
    with pytest.raises(sy.RevealError) as info:
        f(p)
    assert ".get()" in str(info.value)
    assert "bob" in str(info.value)
    assert_same_state(before, bob)
    assert torch.equal(p.get(), torch.tensor([2.5]))  # the pointer still works


@cases(
    "f",
    [
        ("torch.is_nonzero", lambda p, q: torch.is_nonzero(p[0])),
        (".is_nonzero()", lambda p, q: p[0].is_nonzero()),
        ("x in p", lambda p, q: 2.5 in p),
        ("torch.equal", lambda p, q: torch.equal(p, q)),
        ("torch.allclose", lambda p, q: torch.allclose(p, q)),
    ],
)
def test_python_values_computed_from_remote_data_raise_reveal_error(f):
    """Like `bool(p)`: each returns a Python value made from bob's data, not metadata."""
    (bob,) = workers("bob")
    p = torch.tensor([2.5]).send(bob)
    q = torch.tensor([2.5]).send(bob)
    with pytest.raises(sy.RevealError):
        f(p, q)


@pytest.mark.parametrize("method", ["get", "remote_get"])
def test_get_on_a_local_tensor_raises_not_remote_error(method):
    sy.TorchHook(torch)
    x = torch.tensor([1.0])
    with pytest.raises(sy.NotRemoteError, match="already here"):
        getattr(x, method)()
    assert torch.equal(x, torch.tensor([1.0]))


@pytest.mark.parametrize("not_a_worker", ["bob", None, 3])
def test_send_to_something_that_is_not_a_worker_raises_type_error(not_a_worker):
    sy.TorchHook(torch)
    with pytest.raises(TypeError, match="worker"):
        torch.tensor([1.0]).send(not_a_worker)


def test_errors_share_a_base_class_and_standard_bases():
    assert issubclass(sy.WorkerMismatchError, sy.FederatedError)
    assert issubclass(sy.LocalTensorError, ValueError)
    assert issubclass(sy.ObjectNotFoundError, LookupError)
    assert issubclass(sy.NotRemoteError, TypeError)
    for error in (
        sy.StalePointerError,
        sy.RevealError,
        sy.LocalTensorError,
        sy.NotRemoteError,
        sy.ObjectNotFoundError,
    ):
        assert issubclass(error, sy.FederatedError)


def test_an_in_place_foreach_op_returns_the_list_it_was_given_as_torch_does():
    (bob,) = workers("bob")
    targets = [torch.tensor([1.0, 2.0]).send(bob), torch.tensor([3.0]).send(bob)]
    steps = [torch.tensor([0.5, 0.5]).send(bob), torch.tensor([1.0]).send(bob)]
    returned = torch._foreach_add_(targets, steps, alpha=2.0)
    assert returned is targets  # torch returns its first argument itself
    assert [t.copy().get().tolist() for t in targets] == [[2.0, 3.0], [5.0]]
    assert len(bob.objects) == 4  # no new object for the result
