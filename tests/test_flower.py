"""`federated.flower`: the pieces that turn lesson 5's training into Flower apps, and the
processes they start (a Ray node, a SuperLink and SuperNodes), which are all stopped also
when what runs inside fails.

The trainings themselves, in Flower's simulation engine and as a real deployment over TLS,
each within 0.05 of our own FedAvg on the same split, are lesson 11's declared convergence
checks, which tests/test_notebooks.py runs in both languages: running them here too would
only add their minutes to CI again."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("flwr")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

import federated as sy  # noqa: E402
from federated import flower  # noqa: E402
from federated.flower_deploy import (  # noqa: E402
    LocalDeployment,
    LocalRay,
    is_running,
    make_certificates,
    process_tree,
)

sys.path.insert(0, str(Path(__file__).parent))
import flower_task as task  # noqa: E402

OWNERS = 3


def test_arrays_round_trip_and_refuse_another_architecture() -> None:
    torch.manual_seed(1)
    source, target = task.SmallDigitNet(), task.SmallDigitNet()
    flower.load_arrays(target, flower.to_arrays(source))
    for a, b in zip(source.state_dict().values(), target.state_dict().values()):
        assert torch.equal(a, b)
    before = [t.clone() for t in target.state_dict().values()]
    with pytest.raises(ValueError, match="same model function"):
        flower.load_arrays(target, flower.to_arrays(source)[:-1])
    assert all(torch.equal(a, b) for a, b in zip(before, target.state_dict().values()))


def test_epoch_batches_visit_every_sample_once_and_repeat_from_the_seed() -> None:
    data, targets = torch.arange(10.0), torch.arange(10)
    epochs = [
        torch.cat([d for d, _ in flower.epoch_batches(data, targets, 3, seed=5)()])
        for _ in range(2)
    ]
    assert sorted(epochs[0].tolist()) == list(range(10))
    first = flower.epoch_batches(data, targets, 3, seed=5)
    again = flower.epoch_batches(data, targets, 3, seed=5)
    assert [t.tolist() for _, t in first()] == [t.tolist() for _, t in again()]
    assert all(len(t) <= 3 for _, t in first())


def test_nodes_get_exactly_the_parts_federate_gives_the_workers() -> None:
    hook = sy.TorchHook(torch)
    owners = [sy.VirtualWorker(hook, id=f"split-owner-{i}") for i in range(OWNERS)]
    images, labels = task.shuffled_digits()
    shared = sy.BaseDataset(images[:1400], labels[:1400]).federate(owners)
    for i, worker_id in enumerate(shared.workers):
        data, targets = task.owner_part(i, OWNERS)
        assert torch.equal(shared[worker_id].data.copy().get(), data)
        assert torch.equal(shared[worker_id].targets.copy().get(), targets)


def test_server_app_refuses_no_rounds() -> None:
    with pytest.raises(ValueError, match="at least one round"):
        flower.server_app(task.SmallDigitNet, task.held_out_accuracy, rounds=0, clients=3)


def test_throwaway_ca_signs_a_loopback_certificate(tmp_path: Path) -> None:
    paths = make_certificates(tmp_path)
    ca = x509.load_pem_x509_certificate(paths["ca"].read_bytes())
    cert = x509.load_pem_x509_certificate(paths["cert"].read_bytes())
    ca.public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
    )
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    assert cert.issuer == ca.subject
    assert stat.S_IMODE(paths["key"].stat().st_mode) == 0o600
    assert not list(tmp_path.glob("ca.key"))  # the CA's key is never written


def started_by(deployment: LocalDeployment) -> set[int]:
    return {pid for p in deployment.processes for pid in process_tree(p.pid)}


def test_a_failure_inside_the_deployment_still_stops_every_process(tmp_path: Path) -> None:
    pids: set[int] = set()
    with (
        pytest.raises(RuntimeError, match="learner's mistake"),
        LocalDeployment(1, workdir=tmp_path / "run") as deployment,
    ):
        pids = started_by(deployment)
        assert deployment.running == 2  # the SuperLink and one SuperNode
        raise RuntimeError("a learner's mistake")
    assert len(pids) >= 2 and not any(is_running(p) for p in pids)


def test_a_ray_cluster_refuses_no_cpus_and_starts_nothing() -> None:
    with pytest.raises(ValueError, match="at least one CPU"):
        LocalRay(0)


def test_a_failure_inside_the_ray_cluster_still_stops_every_process() -> None:
    import ray

    pids: set[int] = set()
    with pytest.raises(RuntimeError, match="learner's mistake"), LocalRay() as cluster:
        cluster.connect()
        pids = cluster.started()
        assert ray.is_initialized() and len(pids) >= 3  # ray start, the GCS, the raylet...
        raise RuntimeError("a learner's mistake")
    assert not ray.is_initialized()
    assert not any(is_running(p) for p in pids)
    assert not cluster.workdir.exists()  # its logs and sockets are gone too
