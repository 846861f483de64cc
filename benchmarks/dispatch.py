"""What one call through a pointer costs, against the same call on a tensor and on a bare
tensor subclass.

The bare subclass does the least any `__torch_function__` subclass can: it unwraps its
arguments, runs the call and wraps a tensor result in a new subclass object. Its cost over
plain torch is PyTorch's own price for the protocol; what a pointer costs beyond it is
ours (finding the worker, the store, the privacy policy's checks).

    python benchmarks/dispatch.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

import federated as sy


class Bare(torch.Tensor):
    """A wrapper with no storage of its own, holding the real tensor in `held`."""

    held: torch.Tensor

    @staticmethod
    def __new__(cls, real: torch.Tensor) -> Bare:
        wrapper = torch.Tensor._make_wrapper_subclass(cls, real.shape, dtype=real.dtype)
        wrapper.held = real
        return wrapper

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        raise RuntimeError("a Bare tensor reached the dispatcher")

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        real = [a.held if type(a) is Bare else a for a in args]
        result = func(*real, **(kwargs or {}))
        return Bare(result) if isinstance(result, torch.Tensor) else result


def per_call(fn: Callable[[], Any], calls: int = 20_000, repeats: int = 5) -> float:
    """Microseconds per call, the best of `repeats` runs (the least disturbed)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


def main() -> None:
    torch.set_num_threads(1)
    bob = sy.VirtualWorker(sy.TorchHook(torch), id="bob")
    x = torch.randn(2, 64)
    w = torch.randn(32, 64, requires_grad=True)
    b = torch.randn(32, requires_grad=True)
    kinds = {
        "tensor": (x, w, b),
        "bare subclass": (Bare(x), Bare(w), Bare(b)),
        "pointer": (x.send(bob), w.send(bob), b.send(bob)),
    }
    calls: dict[str, Callable[[Any, Any, Any], Any]] = {
        "torch.relu(x)": lambda x, w, b: torch.relu(x),
        "F.relu(x)": lambda x, w, b: F.relu(x),
        "F.linear(x, w, b)": lambda x, w, b: F.linear(x, w, b),
        "x.add_(x, alpha=0)": lambda x, w, b: x.add_(x, alpha=0.0),
    }
    print("| call | tensor (µs) | bare subclass (µs) | pointer (µs) |")
    print("| --- | ---: | ---: | ---: |")
    for name, call in calls.items():
        cost = {k: per_call(lambda a=args, c=call: c(*a)) for k, args in kinds.items()}
        print(
            f"| `{name}` | {cost['tensor']:.1f} | {cost['bare subclass']:.1f} | "
            f"{cost['pointer']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
