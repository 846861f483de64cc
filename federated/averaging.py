"""Federated averaging: many copies of one model become one, weighted by how much data
each copy learned from (McMahan et al., 2017).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from federated import module as _module
from federated.errors import WorkerMismatchError


def _check(models: Sequence[nn.Module], weights: Sequence[float] | None) -> list[float]:
    if len(models) == 0:
        raise ValueError("federated_avg needs at least one model")
    shapes = [[tuple(t.shape) for t, _ in _module._tensors(m)] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("federated_avg needs models of one architecture (same shapes)")
    places = {id(_module.location(m)): _module.location(m) for m in models}
    if len(places) > 1:
        names = sorted(getattr(w, "id", "here") if w is not None else "here"
                       for w in places.values())
        raise WorkerMismatchError(
            f"federated_avg needs every model in one place, but they are on {names}. "
            f"Move them to the aggregator first: `model.move(secure_worker)`."
        )
    if weights is None:
        return [1.0 / len(models)] * len(models)
    if len(weights) != len(models):
        raise ValueError(f"got {len(weights)} weights for {len(models)} models")
    total = float(sum(weights))
    if any(w < 0 for w in weights) or total <= 0:
        raise ValueError("weights must be non-negative with a positive sum (sample counts)")
    return [float(w) / total for w in weights]


def federated_avg(models: Sequence[nn.Module],
                  weights: Sequence[float] | None = None) -> nn.Module:
    """A new model whose every parameter is the weighted mean of the models' parameters.

    `weights` are usually each model's number of training samples; by default all count
    alike. The models must all be in one place, here or on one worker (the aggregator);
    the average is computed there and stays there until you `.get()` it. The inputs are
    left unchanged. Integer buffers (such as BatchNorm's step counter) are taken from the
    first model, since they can't be averaged.
    """
    shares = _check(models, weights)
    average = _module.copy_module(models[0])
    columns = zip(*(_module._tensors(m) for m in models))
    with torch.no_grad():
        for target, column in zip(_module._tensors(average), columns):
            tensor, _ = target
            if not tensor.dtype.is_floating_point:
                continue
            total = column[0][0] * shares[0]
            for (other, _), share in zip(column[1:], shares[1:]):
                total = total + other * share
            tensor.copy_(total)
    return average
