"""What the privacy policy costs, per operation and per training step.

Three situations, measured in this order in one process (the last is for good: once any
worker in a process has held private data, every worker in it fills fresh memory):

1. no private data anywhere: the policy's checks are skipped (the README's bars);
2. public data on a worker, in a process that holds private data elsewhere;
3. private data: every result labelled, the model leaving through the model exit.

Each row is timed against plain PyTorch doing the same work, interleaved, as in
`training_step.py`. Run: `python benchmarks/privacy.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn, optim
from training_step import paired

import federated as sy

Row = tuple[str, float, float, float]


class NoPolicy:
    """A policy that checks nothing: what a call through a pointer costs without one."""

    active = False  # nothing labelled: the executor may skip the bookkeeping, as with bob's

    def before_call(self, *args: object) -> None:
        pass

    def running(self, *args: object) -> None:
        return None

    def check_result(self, *args: object) -> None:
        pass

    def after_call(self, *args: object) -> None:
        pass


def policy_itself(hook: sy.TorchHook) -> tuple[float, float, float]:
    """The same op through two workers, one with no policy at all: the policy's own
    cost per call (no private data in the process; run before anything is loaded)."""
    bare, bob = sy.VirtualWorker(hook, id="bare"), sy.VirtualWorker(hook, id="checked")
    bare.executor.policy = NoPolicy()  # type: ignore[assignment]
    x, w = torch.randn(64), torch.randn(64)
    bx, bw, px, pw = x.send(bare), w.send(bare), x.send(bob), w.send(bob)
    return paired(lambda: bx * bw, lambda: px * pw, 2000)


def one_op(bob: sy.VirtualWorker, private: bool) -> tuple[float, float, float]:
    """`x * w + b` on 64 numbers: a small op, where our per-call cost shows most."""
    x, w, b = torch.randn(64), torch.randn(64), torch.randn(64)
    if private:
        bob.load(x, tag="#bench", private=True)
        (px,) = bob.search("#bench")
    else:
        px = x.send(bob)
    pw, pb = w.send(bob), b.send(bob)
    return paired(lambda: x * w + b, lambda: px * pw + pb, 2000)


def toy_loop(bob: sy.VirtualWorker, private: bool) -> tuple[float, float, float]:
    """The seed's step: send the model, one SGD step on bob's four points, get it back."""
    data = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1.0]])
    target = torch.tensor([[0], [0], [1], [1.0]])
    plain_model, fed_model = nn.Linear(2, 1), nn.Linear(2, 1)
    plain_opt = optim.SGD(plain_model.parameters(), lr=0.1)
    fed_opt = optim.SGD(fed_model.parameters(), lr=0.1)
    if private:
        bob.load(torch.cat([data, target], 1), tag="#toy", private=True)
        (both,) = bob.search("#toy")
        data_bob, target_bob = both[:, :2], both[:, 2:]
    else:
        data_bob, target_bob = data.send(bob), target.send(bob)

    def plain() -> None:
        plain_opt.zero_grad()
        loss = ((plain_model(data) - target) ** 2).sum()
        loss.backward()
        plain_opt.step()
        loss.detach()

    def federated() -> None:
        fed_model.send(bob)
        fed_opt.zero_grad()
        loss = ((fed_model(data_bob) - target_bob) ** 2).sum()
        loss.backward()
        fed_opt.step()
        fed_model.get()  # the loss is private when the data is: it stays

    return paired(plain, federated, 300)


def mlp_step(bob: sy.VirtualWorker, private: bool) -> tuple[float, float, float]:
    """An MLP step on bob: 512 samples of 64 features, batches of 256, model stays."""
    torch.manual_seed(0)
    x, y = torch.randn(512, 64), torch.randint(0, 10, (512,))

    def make() -> tuple[nn.Module, optim.Optimizer]:
        model = nn.Sequential(
            nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
        )
        return model, optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    plain_model, plain_opt = make()
    fed_model, fed_opt = make()
    fed_model.send(bob)
    batches = [(x[i : i + 256], y[i : i + 256]) for i in (0, 256)]
    if private:
        for i, (a, b) in enumerate(batches):
            bob.load(a, tag=f"#x{i}", private=True)
            bob.load(b, tag=f"#y{i}", private=True)
        fed_batches = [(bob.search(f"#x{i}")[0], bob.search(f"#y{i}")[0]) for i in (0, 1)]
    else:
        fed_batches = [(a.send(bob), b.send(bob)) for a, b in batches]
    loss_fn = nn.CrossEntropyLoss()
    state = {"i": 0}

    def step(model: nn.Module, opt: optim.Optimizer, data: list) -> None:
        state["i"] ^= 1
        xb, yb = data[state["i"]]
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()

    return paired(
        lambda: step(plain_model, plain_opt, batches),
        lambda: step(fed_model, fed_opt, fed_batches),
        40,
    )


def main() -> None:
    torch.set_num_threads(1)
    hook = sy.TorchHook(torch)
    benches: list[tuple[str, Callable[..., tuple[float, float, float]]]] = [
        ("one op, x * w + b (64 numbers)", one_op),
        ("seed's toy step (send, step, get)", toy_loop),
        ("MLP step, 256x64 batch", mlp_step),
    ]
    rows: list[Row] = [
        ("one op: a worker without a policy / with it (ratio = its cost)", *policy_itself(hook))
    ]
    situations = [
        ("no private data in the process", False, False),
        ("public data, private data elsewhere", True, False),
        ("on private data", True, True),
    ]
    for situation, elsewhere, private in situations:
        for name, bench in benches:
            bob = sy.VirtualWorker(hook, id=f"bob-{len(rows)}")
            if elsewhere and not private:
                carol = sy.VirtualWorker(hook, id=f"carol-{len(rows)}")
                carol.load(torch.ones(3), private=True)
            rows.append((f"{name}, {situation}", *bench(bob, private)))
    print(f"torch {torch.__version__}, 1 thread")
    print(f"{'benchmark':72} {'plain':>9} {'federated':>10} {'ratio':>6}")
    for name, plain, fed, ratio in rows:
        print(f"{name:72} {plain * 1e6:7.1f}us {fed * 1e6:8.1f}us {ratio:6.2f}")


if __name__ == "__main__":
    main()
