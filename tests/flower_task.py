"""A digits task for the Flower tests, written as a learner would in lesson 5: the model,
the per-owner training on batches, the owner's part of the data, and the test accuracy."""

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn, optim


def shuffled_digits():
    generator = torch.Generator().manual_seed(7)
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target)
    order = torch.randperm(len(images), generator=generator)
    return images[order], labels[order]


class SmallDigitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def train_on(model, batches, epochs=2, lr=0.05):
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        for data, target in batches():
            opt.zero_grad()
            F.cross_entropy(model(data), target).backward()
            opt.step()


def owner_part(partition_id, num_partitions):
    images, labels = shuffled_digits()
    return (
        torch.tensor_split(images[:1400], num_partitions)[partition_id],
        torch.tensor_split(labels[:1400], num_partitions)[partition_id],
    )


def held_out_accuracy(model):
    images, labels = shuffled_digits()
    with torch.no_grad():
        return (model(images[1400:]).argmax(1) == labels[1400:]).float().mean().item()
