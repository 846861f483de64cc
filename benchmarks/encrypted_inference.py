"""Encrypted against plain inference of lesson 5's digits CNN, side by side in one run.

A network is trained in the clear on 1,500 of scikit-learn's digits. Then the other 297
are classified twice: plainly, and with the model and the images both secret-shared
between two workers (a third as crypto provider). Reported for each: CPU seconds,
rounds of communication and bytes the share holders exchange (counted by
`federated.traffic`), bytes the crypto provider deals, and accuracy. One thread, CPU time.
Run: python benchmarks/encrypted_inference.py [--repeats N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import federated as sy
from federated import comparison, traffic


class DigitNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.fc = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def trained_model() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target)
    order = torch.randperm(len(images))
    images, labels = images[order], labels[order]
    model = DigitNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(8):
        for i in range(0, 1500, 32):
            opt.zero_grad()
            F.cross_entropy(model(images[i : i + 32]), labels[i : i + 32]).backward()
            opt.step()
    return model, images[1500:], labels[1500:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="encrypted runs to time")
    args = parser.parse_args()
    torch.set_num_threads(1)  # CPU time of one thread on each side, as the other benchmarks

    model, images, labels = trained_model()
    hook = sy.TorchHook(torch)
    bob, alice, carol = (sy.VirtualWorker(hook, id=n) for n in ("bob", "alice", "carol"))

    with torch.no_grad():
        plain_pred = model(images).argmax(dim=1)
        plain_times = []
        for _ in range(20):
            start = time.process_time()
            model(images).argmax(dim=1)
            plain_times.append(time.process_time() - start)

    shared_model = (
        copy.deepcopy(model)
        .fix_precision()
        .share(bob, alice, crypto_provider=carol, protocol="fss")
    )
    enc_times = []
    for _ in range(args.repeats):
        with torch.no_grad(), traffic.measure() as cost:
            start = time.process_time()
            data = images.fix_precision().share(bob, alice, crypto_provider=carol)
            enc_pred = shared_model(data).argmax(dim=1).get().float_precision().long()
            enc_times.append(time.process_time() - start)

    plain_s, enc_s = statistics.median(plain_times), statistics.median(enc_times)
    accuracy = (plain_pred == labels).float().mean().item()
    enc_accuracy = (enc_pred == labels).float().mean().item()
    agree = (plain_pred == enc_pred).sum().item()
    print(f"digits CNN, {len(images)} test images in one batch; comparisons: {comparison.PROTOCOL}")
    print(f"{'':22}{'plain':>14}{'encrypted':>14}{'ratio':>10}")
    print(f"{'CPU seconds':22}{plain_s:14.4f}{enc_s:14.2f}{enc_s / plain_s:10.0f}")
    print(f"{'rounds':22}{0:14d}{cost.rounds:14d}")
    print(f"{'MB between holders':22}{0:14d}{cost.bytes / 1e6:14.1f}")
    print(f"{'MB dealt by provider':22}{0:14d}{cost.dealer_bytes / 1e6:14.1f}")
    print(f"{'accuracy':22}{accuracy:14.3f}{enc_accuracy:14.3f}")
    print(f"same prediction on {agree} of {len(images)} images")


if __name__ == "__main__":
    main()
