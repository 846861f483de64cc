"""A plan call against the same operations sent one by one, on a virtual worker and on
a worker server in another process, next to plain PyTorch in this process.

The computation is a small classifier's forward pass (two linear layers, tanh,
log-softmax: four operations) on a batch of 32 rows. Each figure is the median of many
calls; ratios are against plain PyTorch. Run: `python benchmarks/plan.py`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import federated as sy


class Classifier(sy.Plan):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(16, 32)
        self.out = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.out(torch.tanh(self.hidden(x))), dim=1)


class PlainClassifier(nn.Module):
    """The same network as an ordinary module, whose `send` sends its parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(16, 32)
        self.out = nn.Linear(32, 4)

    forward = Classifier.forward


def median_time(call: Callable[[], object], n: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def one_by_one(model: nn.Module, worker: sy.Worker) -> Callable[[torch.Tensor], object]:
    """The same forward pass with the model sent as a model: one message per op."""
    copy = PlainClassifier()
    copy.load_state_dict(model.state_dict())
    copy.send(worker)
    return copy


def measure(worker: sy.Worker, model: Classifier, batch: torch.Tensor, n: int) -> tuple:
    x = batch.send(worker)
    plan_ptr = model.send(worker)
    forward = one_by_one(model, worker)
    with torch.no_grad():
        assert torch.allclose(plan_ptr(x).get(), forward(x).get(), atol=1e-6)
        plan_time = median_time(lambda: plan_ptr(x), n)
        ops_time = median_time(lambda: forward(x), n)
    return plan_time, ops_time


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # one core each (worker servers get OMP_NUM_THREADS=1 too)
    hook = sy.TorchHook(torch)
    model = Classifier()
    batch = torch.randn(32, 16)
    model.build(batch)
    with torch.no_grad():
        plain = median_time(lambda: nn.Module.__call__(model, batch), 2000)
    rows = [("virtual", *measure(sy.VirtualWorker(hook, id="bob"), model, batch, 500))]
    with sy.WorkerProcess("bob") as process:
        bob = sy.RemoteWorker(hook, id="bob", port=process.port)
        rows.append(("remote", *measure(bob, model, batch, 200)))
        bob.close()
    print(
        f"torch {torch.__version__}, 1 thread; forward pass of a "
        f"{len(model.graph.ops)}-operation classifier, batch 32: plain PyTorch "
        f"{plain * 1e6:.0f} us"
    )
    print(
        f"{'worker':8} {'plan':>10} {'one by one':>12} {'plan/plain':>11} "
        f"{'ops/plain':>10} {'ops/plan':>9}"
    )
    for name, plan_time, ops_time in rows:
        print(
            f"{name:8} {plan_time * 1e6:8.0f}us {ops_time * 1e6:10.0f}us "
            f"{plan_time / plain:11.1f} {ops_time / plain:10.1f} {ops_time / plan_time:9.2f}"
        )


if __name__ == "__main__":
    main()
