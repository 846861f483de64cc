"""Federated averaging: many copies of one model become one, weighted by how much data
each copy learned from (McMahan et al., 2017).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from federated import module as _module
from federated.errors import WorkerMismatchError
from federated.fixed_precision import FixedPrecisionTensor
from federated.sharing import AdditiveSharingTensor


def _check_architecture(models: Sequence[nn.Module]) -> None:
    shapes = [[tuple(t.shape) for t, _ in _module._tensors(m)] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("federated_avg needs models of one architecture (same shapes)")


def _check(models: Sequence[nn.Module], weights: Sequence[float] | None) -> list[float]:
    if len(models) == 0:
        raise ValueError("federated_avg needs at least one model")
    _check_architecture(models)
    places = {id(_module.location(m)): _module.location(m) for m in models}
    if len(places) > 1:
        names = sorted(getattr(w, "id", "here") if w is not None else "here"
                       for w in places.values())
        raise WorkerMismatchError(
            f"federated_avg needs every model in one place, but they are on {names}. "
            f"Move them to the aggregator first: `model.move(secure_worker)`."
        )
    return _fractions(weights, len(models))


def federated_avg(models: Sequence[nn.Module], weights: Sequence[float] | None = None, *,
                  secure: bool | str = False, crypto_provider: Any = None,
                  precision: int = 6) -> nn.Module:
    """A new model whose every parameter is the weighted mean of the models' parameters.

    `weights` are usually each model's number of training samples; by default all count
    alike. The inputs are left unchanged. Integer buffers (such as BatchNorm's step
    counter) are taken from the first model, since they can't be averaged.

    Plain mode: the models must all be in one place, here or on one worker (the
    aggregator); the average is computed there and stays there until you `.get()` it.

    `secure=True`: each model stays on its own worker (one model per worker). Each owner
    encodes its weighted model in fixed precision and secret-shares it among all the
    owners; each owner adds up the shares it holds; only the sum is reconstructed, here.
    No worker and not the caller ever sees another owner's model. The result is a model
    here, equal to the plain average within 10**-precision per owner. Sums need no
    Beaver triples, so `crypto_provider` is only passed on to the shares.
    """
    if isinstance(secure, str):  # the scalable protocols of federated/secagg.py
        from federated import secagg
        return secagg.average(models, weights, protocol=secure)
    if secure:
        return _secure_avg(models, weights, crypto_provider, precision)
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


def _secure_avg(models: Sequence[nn.Module], weights: Sequence[float] | None,
                crypto_provider: Any, precision: int) -> nn.Module:
    owners = [_module.location(m) for m in models]
    if len(models) < 2 or any(w is None for w in owners) or \
            len({w.id for w in owners}) != len(owners):
        raise ValueError(
            "secure averaging needs two or more models, each on its own owner's worker "
            "(model.send(owner)); one worker cannot hide its model from itself"
        )
    _check_architecture(models)
    fractions = _fractions(weights, len(models))
    tensors = [_module._tensors(m) for m in models]
    # A local model of the same architecture, built without fetching anyone's values.
    memo = {id(t): (nn.Parameter(torch.zeros(t.shape, dtype=t.dtype), t.requires_grad)
                    if is_param else torch.zeros(t.shape, dtype=t.dtype))
            for t, is_param in tensors[0]}
    average = copy.deepcopy(models[0], memo)
    with torch.no_grad():
        for j, (target, _) in enumerate(_module._tensors(average)):
            if not target.dtype.is_floating_point:
                target.copy_(tensors[0][j][0].copy().get())  # a counter, not data
                continue
            total = None
            for column, fraction in zip(tensors, fractions):
                weighted = column[j][0] * fraction  # computed on its owner's worker
                encoded = FixedPrecisionTensor.from_float(weighted, precision).child
                shared = AdditiveSharingTensor.share(encoded, owners, crypto_provider)
                total = shared if total is None else total + shared
            target.copy_(FixedPrecisionTensor(total.get(), precision).float_precision())
    return average


def _fractions(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise ValueError(f"got {len(weights)} weights for {n} models")
    total = float(sum(weights))
    if any(w < 0 for w in weights) or total <= 0:
        raise ValueError("weights must be non-negative with a positive sum (sample counts)")
    return [float(w) / total for w in weights]
