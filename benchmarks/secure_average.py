"""Secure averaging against the plain average, 100 owners of the digits MLP, in one process.

CPU time per call, median of repeats; each ratio is against `federated_avg(models)` measured
in the same run. Lesson 6's version (every owner shares with every other, on virtual
workers) is timed once, since it is the slow one. The masks' setup (key agreement and the
secret-key shares) happens once for many rounds and is reported apart from a round.

    python benchmarks/secure_average.py [--owners 100] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import federated as sy
from federated import secagg


def cpu(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        call()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owners", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-lesson6", action="store_true")
    args = parser.parse_args()
    n = args.owners
    torch.manual_seed(0)
    models = [nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)) for _ in range(n)]
    weights = [float(i % 7 + 1) for i in range(n)]
    plain = cpu(lambda: sy.federated_avg(models, weights=weights), args.repeats)
    start = time.process_time()
    session = secagg.Session.setup(n)
    setup = time.process_time() - start
    masks = cpu(lambda: secagg.secure_average(models, weights, session=session), args.repeats)
    committee = cpu(lambda: secagg.committee_average(models, weights), args.repeats)
    rows = [
        ("plain federated_avg", plain),
        ("masks, one round", masks),
        ("masks, setup (once)", setup),
        ("committee of 3", committee),
    ]
    if not args.skip_lesson6:
        hook = sy.TorchHook(torch)
        owners = [sy.VirtualWorker(hook, id=f"owner{i}") for i in range(n)]
        sent = [m.copy().send(w) for m, w in zip(models, owners)]
        rows.append(
            (
                "lesson 6 (secure=True)",
                cpu(lambda: sy.federated_avg(sent, weights=weights, secure=True), 1),
            )
        )
    print(f"{n} owners, digits MLP ({sum(p.numel() for p in models[0].parameters())} weights)")
    print("| method | CPU ms | vs plain |")
    print("| --- | ---: | ---: |")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e3:.1f} | {seconds / plain:.1f}x |")


if __name__ == "__main__":
    main()
