"""The slurmrestd transport against Debian's slurmrestd (22.05, ``rest_auth/jwt``) and the real
Slurm site ``beta``: the adapter's own commands, as the spawner and the monitor send them,
submitted, listed (many jobs in one request), found and cancelled by name, as the user named
with the hub's (root's) token; another user cannot cancel them with the same token, a user's
own token cannot act as another user; a forged token is answered with failures, never taken
for jobs that ended; the partitions read as ``sinfo`` tells them.  Every wait is a bounded
poll.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from continuum_federation.slurmrestd import SlurmRestD
from continuum_spawners.schedulers.base import JobSpec, JobState
from continuum_spawners.schedulers.slurm import SlurmAdapter
from continuum_spawners.schedulers.slurmrest import SlurmRestTransport
from continuum_spawners.sites import RestConnection
from fixtures.slurm import squeue, user_jobs

pytestmark = [pytest.mark.integration, pytest.mark.deploy]

ADAPTER = SlurmAdapter()
TIMEOUT = 60.0
T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], what: str) -> T:
    """Await ``probe`` until it returns something truthy; fail after :data:`TIMEOUT`."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        value = await probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not reached within {TIMEOUT:.0f} s"
        await asyncio.sleep(0.2)


def transport(server: SlurmRestD, **changes: str) -> SlurmRestTransport:
    connection = RestConnection(server.url, str(server.token_file), "root")
    return SlurmRestTransport(dataclasses.replace(connection, **changes), timeout=30)


def spec(name: str, partition: str = "gpu") -> JobSpec:
    return JobSpec(
        name=name,
        partition=partition,
        cores=1,
        memory_gb=1,
        walltime_minutes=5,
        workdir="/home/alice",
        output="/dev/null",
        env_names=("MARKER",),
    )


async def test_submit_status_find_and_cancel_through_slurmrestd(
    slurmrestd, slurm_sites, unix_users
):
    beta = slurm_sites["beta"]
    rest = transport(slurmrestd)
    name = f"rest-{uuid.uuid4().hex[:8]}"
    script = '#!/bin/sh\n[ "$MARKER" = here ] || exit 3\nsleep 300\n'
    ids = []
    for _ in range(2):
        result = await rest.run(
            ADAPTER.submit_argv(spec(name)), user="alice", env={"MARKER": "here"}, stdin=script
        )
        assert result.returncode == 0, result.stderr
        ids.append(ADAPTER.parse_submit(result.stdout))
    try:
        # submitted as alice, not as the token's root
        assert {job_id for job_id, _ in user_jobs(beta, "alice")} >= set(ids)

        async def both(state: JobState) -> bool:
            result = await rest.run(ADAPTER.status_argv([*ids, "999999"]))
            statuses = ADAPTER.parse_status(result.returncode, result.stdout, result.stderr, ids)
            return all(statuses[i].state is state for i in ids)

        # running, not ended: the script found its environment
        await eventually(lambda: both(JobState.RUNNING), "both jobs running")

        found = await rest.run(ADAPTER.find_name_argv(name), user="alice")
        assert sorted(found.stdout.split()) == sorted(ids)
        assert (await rest.run(ADAPTER.find_name_argv(name), user="bob")).stdout == ""

        # bob cannot cancel alice's job with the same hub token: slurmctld checks the user
        refused = await rest.run(ADAPTER.cancel_argv(ids[:1]), user="bob")
        assert refused.returncode == 1 and "permission denied" in refused.stderr.lower()

        assert (await rest.run(ADAPTER.cancel_argv(ids[:1]), user="alice")).returncode == 0
        assert (await rest.run(ADAPTER.cancel_name_argv(name), user="alice")).returncode == 0
        await eventually(lambda: both(JobState.GONE), "both jobs cancelled")
    finally:
        for job_id in ids:
            await rest.run(ADAPTER.cancel_argv([job_id]), user="alice")


async def test_probe_partitions_and_refusals(slurmrestd, slurm_sites, tmp_path):
    rest = transport(slurmrestd)
    probe = await rest.run(ADAPTER.probe_argv())
    assert ADAPTER.parse_probe(probe.returncode, probe.stdout, probe.stderr), probe
    (gpu,) = await rest.partitions()
    assert (gpu.name, gpu.state, gpu.nodes, gpu.max_time_minutes) == ("gpu", "UP", "beta-g1", 720)

    refused = await rest.run(
        ADAPTER.submit_argv(spec("rest-bad", partition="nope")),
        user="alice",
        env={"MARKER": "x"},
        stdin="#!/bin/sh\ntrue\n",
    )
    assert refused.returncode == 1 and refused.stderr.startswith("sbatch: error:"), refused

    # only SlurmUser's (root's) token may name another user: alice's cannot act as bob
    minted = await asyncio.to_thread(
        subprocess.run,
        ["scontrol", "token", "username=alice", "lifespan=300"],
        env=slurm_sites["beta"].client_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    alices = tmp_path / "alice.jwt"
    alices.write_text(minted.stdout)
    alices.chmod(0o600)
    as_bob = await transport(slurmrestd, token_file=str(alices), service_user="alice").run(
        ADAPTER.submit_argv(spec("rest-impostor")),
        user="bob",
        env={"MARKER": "x"},
        stdin="#!/bin/sh\n",
    )
    assert as_bob.returncode == 1, as_bob
    assert not squeue(slurm_sites["beta"], "--user=bob", "--name=rest-impostor", "--format=%i")

    # slurmrestd passes a token on: slurmctld refuses a forged one, and every answer fails
    forged = tmp_path / "forged"
    forged.write_text("SLURM_JWT=eyJhbGciOiJIUzI1NiJ9.e30.AAAA\n")
    forged.chmod(0o600)
    forged_rest = transport(slurmrestd, token_file=str(forged))
    probe = await forged_rest.run(ADAPTER.probe_argv())
    assert not ADAPTER.parse_probe(probe.returncode, probe.stdout, probe.stderr)
    status = await forged_rest.run(ADAPTER.status_argv(["1"]))
    parsed = ADAPTER.parse_status(status.returncode, status.stdout, status.stderr, ["1"])
    assert parsed["1"].state is JobState.UNKNOWN  # not GONE: a server is kept, not dropped
    assert "AAAA" not in probe.stderr + status.stderr
