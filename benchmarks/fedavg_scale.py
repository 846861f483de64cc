"""FedAvg at scale: one job, three engines, side by side.

The job: the digits MLP (64-32-10), 5 rounds, each client two local epochs of SGD (batch 32,
lr 0.5) on its consecutive part of 1,500 shuffled digits (the split `federate` makes),
weighted averaging, accuracy on the other 297. Engines: plain PyTorch in one process
(keeping each client's `state_dict`, or with `pytorch-models` each client's trained model,
as the virtual-worker loop does), our virtual workers (pointers), and Flower's simulation
engine (Ray). Each (engine, clients)
runs in a fresh process so that its peak memory (max RSS of that process; for Flower the
driver only, Ray's workers are other processes) is its own.

    python benchmarks/fedavg_scale.py                  # 10, 100, 1000 clients; Flower to 100
    python benchmarks/fedavg_scale.py --clients 10 --flower-max 10
    python benchmarks/fedavg_scale.py --fit 10000      # does 10,000 clients fit in memory?
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import federated as sy

ROUNDS, EPOCHS, BATCH, LR = 5, 2, 32, 0.5


def digits(total: int = 1797) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target)
    order = torch.randperm(len(x))
    x, y = x[order], y[order]
    if total > len(x):  # for the memory check only: the digits again, as more owners' data
        repeat = -(-total // len(x))
        x, y = x.repeat(repeat, 1)[:total], y.repeat(repeat)[:total]
        return x, y, x[:297], y[:297]
    return x[:1500], y[:1500], x[1500:], y[1500:]


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def train(
    model: nn.Module, batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]
) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for _ in range(EPOCHS):
        for data, target in batches():
            opt.zero_grad()
            F.cross_entropy(model(data), target).backward()
            opt.step()


def epoch_batches(
    x: torch.Tensor, y: torch.Tensor, seed: int
) -> Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]:
    generator = torch.Generator().manual_seed(seed)

    def batches() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), BATCH):
            yield x[order[start : start + BATCH]], y[order[start : start + BATCH]]

    return batches


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def run_plain(n: int, rounds: int, total: int, keep_models: bool = False) -> float:
    """Plain PyTorch. Each client's trained `state_dict` is kept for the average, or with
    `keep_models` the trained model itself, as the virtual-worker loop keeps it for
    `federated_avg`: a thousand models alive at once make Python's garbage collector
    work harder, which is the loop's cost, not the pointers'."""
    x, y, tx, ty = digits(total)
    parts = list(zip(torch.tensor_split(x, n), torch.tensor_split(y, n)))
    torch.manual_seed(0)
    model = mlp()
    for r in range(rounds):
        states, counts, models = [], [], []
        for i, (px, py) in enumerate(parts):
            local = copy.deepcopy(model)
            train(local, epoch_batches(px, py, seed=i + 1000 * r))
            states.append(local.state_dict())
            counts.append(len(px))
            if keep_models:
                models.append(local)
        total_count = float(sum(counts))
        with torch.no_grad():
            average = {
                k: sum(s[k] * (c / total_count) for s, c in zip(states, counts)) for k in states[0]
            }
        model.load_state_dict(average)
    return accuracy(model, tx, ty)


def run_workers(n: int, rounds: int, total: int) -> float:
    x, y, tx, ty = digits(total)
    hook = sy.TorchHook(torch)
    workers = [sy.VirtualWorker(hook, id=f"client{i}") for i in range(n)]
    shared = sy.BaseDataset(x, y).federate(workers)
    loader = sy.FederatedDataLoader(shared, batch_size=BATCH, shuffle=True)
    torch.manual_seed(0)
    model = mlp()
    for _ in range(rounds):
        copies, counts = [], []
        for worker_id in shared.workers:
            local = model.copy().send(shared[worker_id].location)
            train(local, lambda worker_id=worker_id: loader.batches(worker_id))
            copies.append(local.get())
            counts.append(len(shared[worker_id]))
        model = sy.federated_avg(copies, weights=counts)
    return accuracy(model, tx, ty)


def run_flower(n: int, rounds: int, total: int) -> float:
    from federated import flower

    x, y, tx, ty = digits(total)

    def part(i: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor_split(x, count)[i], torch.tensor_split(y, count)[i]

    history = flower.History()
    flower.simulate(
        flower.client_app(mlp, train, part, batch_size=BATCH),
        flower.server_app(
            mlp, lambda m: accuracy(m, tx, ty), rounds=rounds, clients=n, history=history
        ),
        n,
        cpus=2,
    )
    return history.accuracies[-1]


def run_plain_models(n: int, rounds: int, total: int) -> float:
    return run_plain(n, rounds, total, keep_models=True)


ENGINES = {
    "pytorch": run_plain,
    "pytorch-models": run_plain_models,
    "workers": run_workers,
    "flower": run_flower,
}


def one(engine: str, n: int, rounds: int, total: int) -> dict[str, float]:
    """Run in this process; the caller started it fresh. One thread, as in the notebooks."""
    torch.set_num_threads(1)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    acc = ENGINES[engine](n, rounds, total)
    return {
        "seconds": time.perf_counter() - start_wall,
        "cpu_seconds": time.process_time() - start_cpu,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "accuracy": acc,
    }


def spawn(engine: str, n: int, rounds: int, total: int, timeout: float) -> dict[str, float]:
    command = [sys.executable, __file__, "--one", engine, str(n), str(rounds), str(total)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, start_new_session=True
        )
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:80]}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument(
        "--flower-max", type=int, default=100, help="run Flower only up to this many clients"
    )
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--fit", type=int, help="only check that this many clients fit")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        engine, n, rounds, total = args.one
        print(json.dumps(one(engine, int(n), int(rounds), int(total))))
        return
    if args.fit:
        for engine in ("pytorch", "workers"):
            result = spawn(engine, args.fit, 1, args.fit, args.timeout)
            print(f"{args.fit} clients, 1 round, {engine}: {json.dumps(result)}", flush=True)
        return
    # CPU time of the run's own process is the figure to compare on a shared machine;
    # for Flower it leaves out Ray's workers, so its wall time is the fair one there.
    print("| clients | engine | time (s) | CPU (s), vs PyTorch | peak memory (MiB) | accuracy |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for n in args.clients:
        cpu: dict[str, float] = {}
        for engine in ENGINES:
            if engine == "flower" and n > args.flower_max:
                print(f"| {n} | flower | not run (over --flower-max) | | | |", flush=True)
                continue
            r = spawn(engine, n, ROUNDS, 1500, args.timeout)
            if "error" in r:
                print(f"| {n} | {engine} | {r['error']} | | | |", flush=True)
                continue
            cpu[engine] = r["cpu_seconds"]
            ratio = ""
            if engine != "pytorch" and "pytorch" in cpu:
                ratio = f" ({r['cpu_seconds'] / cpu['pytorch']:.2f}x"
                if engine == "workers" and "pytorch-models" in cpu:  # the same loop, no pointers
                    ratio += f"; {r['cpu_seconds'] / cpu['pytorch-models']:.2f}x pytorch-models"
                ratio += ")"
            print(
                f"| {n} | {engine} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f}{ratio} | "
                f"{r['peak_mib']:.0f} | {r['accuracy']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
