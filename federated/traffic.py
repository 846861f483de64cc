"""What secret-shared computation costs in messages: rounds and bytes.

Workers in this process pass tensors by reference, so nothing is serialised and nothing
can be measured on a wire. The cost of a protocol is still exact, because it is fixed by
the protocol: every time shares are *opened* (each holder sends its share to every other
holder), that is one round of messages and 8 bytes per element per message. Openings
made together, as the two of a Beaver multiplication, are one round. What the crypto
provider deals (triples, random bits) is counted apart, as `dealer_bytes`: it can be
sent before the inputs are known.

    with traffic.measure() as cost:
        (a * b).get()
    print(cost.rounds, cost.bytes)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Cost:
    """Counters: rounds of communication, bytes between share holders, bytes dealt."""

    rounds: int = 0
    bytes: int = 0
    dealer_bytes: int = 0


_open: list[Cost] = []  # the measurements under way (they may nest)


def opened(elements: int, holders: int) -> None:
    """One round in which `elements` values (all of one batch) were opened."""
    for cost in _open:
        cost.rounds += 1
        cost.bytes += 8 * elements * holders * (holders - 1)


def dealt(elements: int, holders: int) -> None:
    """The crypto provider sent one share of `elements` values to each holder."""
    for cost in _open:
        cost.dealer_bytes += 8 * elements * holders


def shared(elements: int, holders: int) -> None:
    """An input was split and its shares sent out: data moved, but no round of its own."""
    for cost in _open:
        cost.bytes += 8 * elements * holders


@contextmanager
def measure() -> Iterator[Cost]:
    """Count the traffic of everything shared that runs inside the `with` block."""
    cost = Cost()
    _open.append(cost)
    try:
        yield cost
    finally:
        _open.remove(cost)
