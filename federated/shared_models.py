"""Whole models and optimizers on shared values, with PySyft 0.2's calls.

    model.fix_precision().share(alice, bob, crypto_provider=carol)   # every parameter
    model(x_shared)                                                  # encrypted inference
    optimizer = optim.SGD(model.parameters(), lr=0.1).fix_precision()

A module keeps its parameters in `_parameters`; this swaps each for its fixed-precision
(then shared) value, so the module's own `forward` runs on shares through the torch
functions of `federated.shared_nn`. `TorchHook` adds them to torch and `unhook()` takes them away.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from federated import shared_autograd, shared_nn  # noqa: F401 - they register themselves
from federated.fixed_precision import FixedPrecisionTensor
from federated.language import tr
from federated.sharing import AdditiveSharingTensor


def tensor_fix_precision(
    self: torch.Tensor,
    precision: int | None = None,
    *,
    precision_fractional: int | None = None,
    base: int = 10,
    **unused: Any,
) -> FixedPrecisionTensor:
    """Encode as integers, value * 10**precision, ready to be secret-shared.

    PySyft's spelling, `precision_fractional=`, is accepted; the base is always 10."""
    if base != 10:
        raise ValueError(tr("fixed precision here is decimal: leave base=10"))
    if precision is not None and precision_fractional is not None:
        raise TypeError(tr("give either precision or precision_fractional, not both"))
    chosen = precision if precision is not None else precision_fractional
    return FixedPrecisionTensor.from_float(self, 3 if chosen is None else chosen)


def tensor_share(
    self: torch.Tensor,
    *workers: Any,
    crypto_provider: Any = None,
    protocol: str | None = None,
    **unused: Any,
) -> AdditiveSharingTensor:
    """Secret-share an int64 tensor among `workers` (floats: `.fix_precision()` first)."""
    from federated.comparison import check_protocol

    check_protocol(protocol)
    return AdditiveSharingTensor.share(self, workers, crypto_provider)


def module_fix_precision(self: nn.Module, *args: Any, **kwargs: Any) -> nn.Module:
    """Encode every parameter in place; returns the same module, ready to `.share()`.

    A model on a worker (`model.send(alice)`) is encoded there, and `.share()` then splits
    it from there: its weights never pass through this machine."""
    encoded = {}
    for sub in self.modules():  # encode all first: a bad setting changes nothing
        for name, p in sub._parameters.items():
            if isinstance(p, torch.Tensor) and not isinstance(p, FixedPrecisionTensor):
                encoded[(id(sub), name)] = tensor_fix_precision(p.detach(), *args, **kwargs)
    for sub in self.modules():
        for name in list(sub._parameters):
            if (id(sub), name) in encoded:
                # the encoded value stands in for the Parameter, as in PySyft 0.2
                sub._parameters[name] = encoded[(id(sub), name)]  # type: ignore[assignment]
    return self


def module_share(self: nn.Module, *workers: Any, **kwargs: Any) -> nn.Module:
    """Secret-share every (fixed-precision) parameter among `workers`, in place."""
    # after fix_precision the values are not Parameters, whatever torch's annotation says
    params: list[tuple[nn.Module, str, object]] = [
        (sub, name, p)
        for sub in self.modules()
        for name, p in sub._parameters.items()
        if p is not None
    ]
    encoded = [(sub, name, p) for sub, name, p in params if isinstance(p, FixedPrecisionTensor)]
    if len(encoded) != len(params):
        raise TypeError(tr("share the model after encoding it: model.fix_precision().share(...)"))
    shared = [(sub, name, p.share(*workers, **kwargs)) for sub, name, p in encoded]
    for sub, name, value in shared:
        sub._parameters[name] = value
    return self


def optimizer_fix_precision(
    self: torch.optim.Optimizer, *args: Any, **kwargs: Any
) -> torch.optim.Optimizer:
    """PySyft encoded the optimizer's numbers; here an update `p - lr * grad` on shared
    values encodes `lr` itself, so the optimizer is returned as it is."""
    return self
