"""What differential privacy costs in time: one epoch of `sy.dp.train` on a worker next to
the same epoch of plain SGD here, on lesson 8's digits network.

DP-SGD's own price is per-example gradients (Opacus's hooks) and the noise; the
worker adds its checks, the budget charge and the accountant (computed once per run).
Both run in this process, interleaved, and the ratio is what is reported.
Run: python benchmarks/dp_cost.py
"""

from __future__ import annotations

import time

import torch
from sklearn.datasets import load_digits
from torch import nn, optim
from training_step import paired

import federated as sy


def network() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def main() -> None:
    torch.set_num_threads(1)
    digits = load_digits()
    images = torch.tensor(digits.data[:1500], dtype=torch.float32) / 16.0
    labels = torch.tensor(digits.target[:1500])
    hook = sy.TorchHook(torch)
    bob = sy.VirtualWorker(hook, id="bob")
    data = bob.load(images, private=True, epsilon=1e9)  # a budget that lasts the benchmark
    target = bob.load(labels, private=True, epsilon=1e9)
    plain_model = network()
    plain_opt = optim.SGD(plain_model.parameters(), lr=1.0)

    def plain() -> None:
        for i in range(0, 1500, 100):
            plain_opt.zero_grad()
            nn.functional.cross_entropy(
                plain_model(images[i : i + 100]), labels[i : i + 100]
            ).backward()
            plain_opt.step()

    def private() -> None:
        model, _ = sy.dp.train(
            network(),
            data,
            target,
            epochs=1,
            batch_size=100,
            lr=1.0,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
        )
        model.get()

    plain_s, dp_s, ratio = paired(plain, private, repeats=1, rounds=11)
    start = time.process_time()
    for _ in range(5):
        sy.dp.epsilon(1.0, sample_rate=1 / 15, steps=15, delta=sy.dp.DEFAULT_DELTA)
    accountant_s = (time.process_time() - start) / 5
    print(
        f"one epoch, 1500 digits, batches of 100: plain {plain_s * 1e3:.1f} ms, "
        f"sy.dp.train {dp_s * 1e3:.1f} ms, ratio {ratio:.1f}x"
    )
    print(
        f"of which the accountant (once per run, whatever its length) "
        f"{accountant_s * 1e3:.1f} ms; the rest is "
        f"{(dp_s - accountant_s) / plain_s:.1f}x the plain epoch"
    )


if __name__ == "__main__":
    main()
