"""Slurm accounting in the local federation: one real slurmdbd (on a private MariaDB) records
the jobs of both sites, and ``sacct`` answers with what the hub's usage collector reads.

The ``accounting`` marker turns accounting on for the session's sites (``slurm_accounting`` in
``tests/fixtures/slurm.py``).  Jobs are short (``sleep 2``); every wait is a bounded poll.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterator

import pytest

from continuum_federation.process import log_tail
from continuum_federation.slurm import LocalSlurmCluster
from continuum_federation.slurmdbd import ACCOUNT, SlurmDBD
from fixtures.slurm import job_state, sacct_job, sbatch_as, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.operations, pytest.mark.accounting]

#: generous bounds: the suite must pass on a slow, busy 2-core machine
RECORD_TIMEOUT = 60.0
SHORT_JOB = "#!/bin/bash\nsleep 2\n"


def finished_record(site: LocalSlurmCluster, job_id: str) -> dict[str, str]:
    """Wait until sacct has the job's final record (COMPLETED, with its end time)."""

    def final() -> dict[str, str] | None:
        record = sacct_job(site, job_id)
        return record if record and record["State"] == "COMPLETED" else None

    try:
        return wait_until(final, RECORD_TIMEOUT, interval=0.25, what=f"{site.name} job {job_id}")
    except AssertionError as err:
        raise AssertionError(
            f"{err}; last record {sacct_job(site, job_id)}; slurmctld log:\n"
            f"{log_tail(site.log_dir / 'slurmctld.log')}"
        ) from None


def tres(record: dict[str, str]) -> dict[str, str]:
    """``AllocTRES`` (``billing=1,cpu=1,gres/gpu=1,…``) as a mapping."""
    return dict(item.split("=", 1) for item in record["AllocTRES"].split(",") if item)


@pytest.fixture
def dbd(slurm_accounting: SlurmDBD | None) -> Iterator[SlurmDBD]:
    """The session's slurmdbd, running again after the test whatever the test did to it."""
    assert slurm_accounting is not None, "the accounting marker must start slurmdbd"
    yield slurm_accounting
    slurm_accounting.start()


def test_finished_job_has_cpu_time(accounted_sites: dict[str, LocalSlurmCluster]) -> None:
    """A finished job of alice on alpha: CPUTimeRAW = ElapsedRaw × AllocCPUS, in her account."""
    alpha = accounted_sites["alpha"]
    job_id = sbatch_as("alice", alpha, SHORT_JOB, ["--cpus-per-task=2", "--output=/dev/null"])
    record = finished_record(alpha, job_id)
    assert (record["User"], record["Account"], record["AllocCPUS"]) == ("alice", ACCOUNT, "2")
    assert int(record["ElapsedRaw"]) >= 2
    assert int(record["CPUTimeRAW"]) == int(record["ElapsedRaw"]) * int(record["AllocCPUS"])
    assert tres(record)["cpu"] == "2" and "gres/gpu" not in tres(record)
    # no energy plugin on these sites: nothing measured (the collector falls back to the model)
    assert record["ConsumedEnergyRaw"] in ("", "0")


def test_gpu_job_has_gres_in_alloc_tres(accounted_sites: dict[str, LocalSlurmCluster]) -> None:
    """A job with ``--gres=gpu:1`` on beta's GPU partition: ``gres/gpu=1`` in AllocTRES."""
    beta = accounted_sites["beta"]
    job_id = sbatch_as(
        "bob", beta, SHORT_JOB, ["--partition=gpu", "--gres=gpu:1", "--output=/dev/null"]
    )
    record = finished_record(beta, job_id)
    assert record["User"] == "bob"
    assert tres(record)["gres/gpu"] == "1"
    assert int(record["CPUTimeRAW"]) == int(record["ElapsedRaw"]) * int(record["AllocCPUS"])


def test_slurmdbd_restart_loses_no_job(
    accounted_sites: dict[str, LocalSlurmCluster], dbd: SlurmDBD
) -> None:
    """A job that runs and ends while slurmdbd is down appears once slurmdbd is back (slurmctld
    queued its records); a job recorded before the outage is still there, once each."""
    alpha = accounted_sites["alpha"]
    before = sbatch_as("carol", alpha, SHORT_JOB, ["--output=/dev/null"])
    recorded = finished_record(alpha, before)
    dbd.stop()
    # what the hub's collector sees meanwhile: sacct fails (→ "usage delayed")
    down = subprocess.run(
        ["sacct", "-X", "--noheader", f"--jobs={before}"],
        env=alpha.client_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert down.returncode != 0, down.stdout
    during = sbatch_as("carol", alpha, SHORT_JOB, ["--output=/dev/null"])
    wait_until(lambda: job_state(alpha, during) == "", RECORD_TIMEOUT, 0.25, f"job {during} to end")
    dbd.start()
    after = finished_record(alpha, during)
    assert after["User"] == "carol" and int(after["ElapsedRaw"]) >= 2
    assert int(after["CPUTimeRAW"]) == int(after["ElapsedRaw"]) * int(after["AllocCPUS"])
    assert sacct_job(alpha, before) == recorded


def test_accounting_daemons_listen_on_loopback_only(
    accounted_sites: dict[str, LocalSlurmCluster], dbd: SlurmDBD
) -> None:
    """slurmdbd and its MariaDB accept connections from this machine only."""
    listening = subprocess.run(
        ["ss", "--listening", "--tcp", "--numeric", "--no-header"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    hosts: dict[int, set[str]] = {dbd.port: set(), dbd.database.port or 0: set()}
    for line in listening:
        # State Recv-Q Send-Q Local:Port Peer:Port
        host, _, port = line.split()[3].rpartition(":")
        if int(port) in hosts:
            hosts[int(port)].add(host.strip("[]"))
    for port, bound in hosts.items():
        assert bound, f"nothing listens on port {port}"
        assert all(ipaddress.ip_address(h).is_loopback for h in bound), (port, bound)
