"""The errors a learner meets, each saying what went wrong and what to do.

Every one is raised *before* anything changes on a worker, so a failed call can simply
be corrected and run again.
"""

from __future__ import annotations


class FederatedError(Exception):
    """Base class of this package's errors."""


class WorkerMismatchError(FederatedError, RuntimeError):
    """An operation mixed pointers that live on different workers."""


class LocalTensorError(FederatedError, ValueError):
    """An operation mixed a pointer with a tensor that is still on this machine.

    Not a TypeError: torch turns a TypeError inside an operator such as `+` into
    `NotImplemented`, and Python would then print its own, far less helpful, message.
    """


class ObjectNotFoundError(FederatedError, LookupError):
    """A worker was asked for an object it does not hold (fetched, moved or freed)."""


class StalePointerError(FederatedError, RuntimeError):
    """A pointer was used after `.get()` or `.move()` took its object away."""


class RevealError(FederatedError, RuntimeError):
    """A call would copy a remote value to this machine without an explicit `.get()`."""


class NotRemoteError(FederatedError, TypeError):
    """A pointer-only call (`.get()`, `.move()`) was made on something that is already here."""


class PrivateDataError(FederatedError, PermissionError):
    """Raw private data (or a trivial copy of it) was asked to leave its worker."""


class BudgetExceededError(FederatedError, PermissionError):
    """A differentially private release asked for more epsilon than the data has left."""


class WorkerUnreachableError(FederatedError, ConnectionError):
    """A remote worker did not answer within its deadline (stopped, crashed, unreachable)."""


__all__ = [
    name
    for name, value in dict(globals()).items()
    if isinstance(value, type) and issubclass(value, FederatedError)
]
