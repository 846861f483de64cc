"""Time a training step through pointers next to the same step in plain PyTorch.

Both run in this one process, interleaved, so the machine's mood affects them alike.
Prints the ratios the README reports. Run: `make benchmark` (or python benchmarks/...).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn, optim

import federated as sy


def paired(
    plain: Callable[[], None], federated: Callable[[], None], repeats: int, rounds: int = 31
) -> tuple[float, float, float]:
    """Median seconds per call of each, and the median of the per-round ratios.

    The two are timed in alternating rounds, so a slow spell of the machine hits both
    alike; each round's ratio compares neighbours, which is steadier than either time.
    CPU time of this process, not wall time: a virtual machine's stolen time is not ours.
    """
    for step in (plain, federated):
        for _ in range(repeats // 10 + 1):
            step()  # warm-up
    times: dict[Callable[[], None], list[float]] = {plain: [], federated: []}
    for _ in range(rounds):
        for step in (plain, federated):
            start = time.process_time()
            for _ in range(repeats):
                step()
            times[step].append((time.process_time() - start) / repeats)
    ratios = [f / p for p, f in zip(times[plain], times[federated])]
    return (
        statistics.median(times[plain]),
        statistics.median(times[federated]),
        statistics.median(ratios),
    )


def toy_loop(hook: sy.TorchHook) -> tuple[float, float, float]:
    """The seed's step: send the model, one SGD step on bob's four points, get it back."""
    bob = sy.VirtualWorker(hook, id="bob")
    data = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1.0]])
    target = torch.tensor([[0], [0], [1], [1.0]])
    plain_model, fed_model = nn.Linear(2, 1), nn.Linear(2, 1)
    plain_opt = optim.SGD(plain_model.parameters(), lr=0.1)
    fed_opt = optim.SGD(fed_model.parameters(), lr=0.1)
    data_bob, target_bob = data.send(bob), target.send(bob)

    def plain() -> None:
        plain_opt.zero_grad()
        loss = ((plain_model(data) - target) ** 2).sum()
        loss.backward()
        plain_opt.step()
        loss.detach()

    def federated() -> None:
        fed_model.send(data_bob.location)
        fed_opt.zero_grad()
        loss = ((fed_model(data_bob) - target_bob) ** 2).sum()
        loss.backward()
        fed_opt.step()
        fed_model.get()
        loss.get()

    return paired(plain, federated, 500)


def mlp_step(hook: sy.TorchHook) -> tuple[float, float, float]:
    """An MLP step on bob: 512 samples of 64 features, batches of 256, model stays on bob."""
    torch.manual_seed(0)
    bob = sy.VirtualWorker(hook, id="bob2")
    x, y = torch.randn(512, 64), torch.randint(0, 10, (512,))

    def make(foreach: bool | None) -> tuple[nn.Module, optim.Optimizer]:
        model = nn.Sequential(
            nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
        )
        return model, optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=foreach)

    # Plain PyTorch as a learner writes it (torch chooses its per-parameter loop on the
    # CPU); the federated model with `foreach=True`, as `federated/optim.py` advises for a
    # model on a worker: the same arithmetic in three calls to the worker instead of 18.
    plain_model, plain_opt = make(foreach=None)
    fed_model, fed_opt = make(foreach=True)
    fed_model.send(bob)
    batches = [(x[i : i + 256], y[i : i + 256]) for i in (0, 256)]
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
        60,
    )


def main() -> None:
    torch.set_num_threads(1)  # one core each, so the ratio is not about thread scheduling
    hook = sy.TorchHook(torch)
    rows = [
        ("seed's toy loop (send, step, get)", *toy_loop(hook)),
        ("MLP step, 256x64 batch, on the worker", *mlp_step(hook)),
    ]
    print(f"torch {torch.__version__}, 1 thread")
    print(f"{'benchmark':40} {'plain':>10} {'federated':>10} {'ratio':>6}")
    for name, plain, fed, ratio in rows:
        print(f"{name:40} {plain * 1e6:8.1f}us {fed * 1e6:8.1f}us {ratio:6.2f}")


if __name__ == "__main__":
    main()
