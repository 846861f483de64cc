"""Scalable secure averaging: the sum is right, survives dropouts, and no single party
learns a model. Each attack we thought of is a test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import federated as sy
from federated import secagg


def models(n: int, seed: int = 3) -> list[nn.Module]:
    torch.manual_seed(seed)
    return [nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)) for _ in range(n)]


def gap(a: nn.Module, b: nn.Module) -> float:
    return max(
        (x - y).abs().max().item() for x, y in zip(a.state_dict().values(), b.state_dict().values())
    )


def test_shamir_rebuilds_from_threshold_shares_and_not_from_fewer() -> None:
    secret = bytes(range(32))
    shares = secagg.shamir_split(secret, [1, 2, 3, 4, 5], threshold=3)
    assert secagg.shamir_join({x: shares[x] for x in (2, 4, 5)}) == secret
    assert secagg.shamir_join(shares) == secret
    with pytest.raises(secagg.ProtocolError):  # two shares give some other number
        secagg.shamir_join({x: shares[x] for x in (1, 2)})


def test_shamir_refuses_bad_points_and_thresholds() -> None:
    with pytest.raises(ValueError, match="distinct"):
        secagg.shamir_split(b"k" * 32, [1, 1, 2], 2)
    with pytest.raises(ValueError, match="threshold"):
        secagg.shamir_split(b"k" * 32, [1, 2], 3)


def test_masked_average_equals_the_plain_average() -> None:
    owners, weights = models(12), [float(w) for w in range(1, 13)]
    plain = sy.federated_avg(owners, weights=weights)
    assert gap(secagg.secure_average(owners, weights), plain) < 1e-6
    assert gap(sy.federated_avg(owners, weights=weights, secure="masks"), plain) < 1e-6
    assert gap(sy.federated_avg(owners, weights=weights, secure="committee"), plain) < 1e-6


def test_pairwise_masks_cancel_with_a_few_neighbours_each() -> None:
    graph = secagg.neighbours(50, secagg.default_degree(50))
    assert all(len(g) == 12 for g in graph)
    assert all(i in graph[j] for i, near in enumerate(graph) for j in near)  # symmetric
    owners = models(50)
    session = secagg.Session.setup(50)
    assert gap(secagg.secure_average(owners, session=session), sy.federated_avg(owners)) < 1e-6


def test_dropouts_are_recovered_and_stay_out_of_later_rounds() -> None:
    owners, weights = models(10), [5.0] * 10
    session = secagg.Session.setup(10, degree=4, threshold=2)
    got = secagg.secure_average(owners, weights, session=session, dropouts=[2, 7])
    kept = [i for i in range(10) if i not in (2, 7)]
    expected = sy.federated_avg([owners[i] for i in kept], weights=[5.0] * len(kept))
    assert gap(got, expected) < 1e-6
    again = secagg.secure_average(owners, weights, session=session, dropouts=[4])
    kept = [i for i in kept if i != 4]
    assert gap(again, sy.federated_avg([owners[i] for i in kept])) < 1e-6
    assert session.dropped == {2, 4, 7}


def test_too_many_dropouts_are_refused_before_anything_is_revealed() -> None:
    session = secagg.Session.setup(6, degree=2, threshold=2)
    with pytest.raises(secagg.ProtocolError, match="threshold"):
        secagg.secure_average(models(6), session=session, dropouts=[0, 2])
    assert session.round == 0 and session.dropped == set()


def test_a_masked_vector_alone_hides_the_model() -> None:
    owners = models(4)
    session = secagg.Session.setup(4)
    owner = session.owners[1]
    for x, share in owner.share_self_mask(session.threshold).items():
        session.owners[x - 1].keep_shares(1, mask_share=share)
    masked = owner.masked(owners[1], 1.0, round_=1)
    encoded = secagg.encode(secagg.flatten(owners[1]))
    assert masked.shape == encoded.shape
    # what the aggregator sees is not the model, nor close to it in any coordinate
    assert not np.any(masked == encoded)
    assert np.abs(secagg.decode(masked).numpy()).min() > 1.0


def test_an_owner_never_reveals_both_shares_of_one_owner() -> None:
    session = secagg.Session.setup(5, degree=4, threshold=2)
    for owner in session.owners:
        for x, share in owner.share_self_mask(session.threshold).items():
            session.owners[x - 1].keep_shares(owner.index, mask_share=share)
    helper = session.owners[1]
    helper.reveal(0, "mask")
    # a curious aggregator now claims owner 0 dropped, to rebuild its key as well
    with pytest.raises(secagg.ProtocolError, match="both would unmask"):
        helper.reveal(0, "key")


def test_one_committee_member_sees_only_random_numbers() -> None:
    owners = models(3)
    member = secagg.Member(0, last=False)
    last = secagg.Member(1, last=True)
    words = secagg.encode(secagg.flatten(owners[0]))
    seed = bytes(16)
    member.receive(0, seed)
    last.receive(0, words - secagg.prg(seed, 1, words.size))
    share = last.total([0], 1, words.size)
    assert np.abs(secagg.decode(share).numpy()).min() > 1.0
    together = share + member.total([0], 1, words.size)
    assert np.array_equal(together, words)


def test_committee_leaves_out_owners_that_dropped() -> None:
    owners = models(5)
    got = secagg.committee_average(owners, [1, 2, 3, 4, 5], dropouts=[1])
    expected = sy.federated_avg([owners[i] for i in (0, 2, 3, 4)], weights=[1, 3, 4, 5])
    assert gap(got, expected) < 1e-6


def test_bad_inputs_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="at least two owners"):
        secagg.Session.setup(1)
    with pytest.raises(ValueError, match="same shapes"):
        secagg.secure_average([nn.Linear(2, 2), nn.Linear(3, 2)])
    with pytest.raises(ValueError, match="non-negative weights"):
        secagg.committee_average(models(2), [1.0, -1.0])
    with pytest.raises(ValueError, match="unknown secure averaging protocol"):
        sy.federated_avg(models(2), secure="magic")
