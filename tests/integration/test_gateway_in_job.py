"""The first worker in its scheduler's job (``SiteClusterConfig.scheduler_in_worker_job``).

A cluster created with ``workers=1`` is one Slurm job of the user on the real site ``alpha``:
the scheduler and the worker, asking for the cores of both.  Scaled to 0, the worker goes and
the job stays for the scheduler; scaled up again, new workers are jobs of their own; shut down,
every job goes.  The dashboard (loaded by the scheduler after its first heartbeat) answers its
owner and nobody else.
"""

from __future__ import annotations

import requests

from continuum_federation.slurm import LocalSlurmCluster
from fixtures.gateway import INTEGRATION_MARKS, HubGateway, gateway_jobs
from fixtures.slurm import squeue, wait_until

pytestmark = INTEGRATION_MARKS

CPU = {"site": "alpha", "worker_cores": 1, "worker_memory_gb": 1, "walltime_minutes": 30}


def cluster_jobs(site: LocalSlurmCluster, name: str) -> list[tuple[str, str, str]]:
    """``(job id, state, CPUs)`` of the cluster's jobs."""
    rows = squeue(site, "--user=alice", "--format=%i|%j|%T|%C")
    return [(r[0], r[2], r[3]) for r in rows if r[1] == f"dg-{name}"]


def test_one_job_runs_scheduler_and_first_worker_and_outlives_it(
    gateway: HubGateway, slurm_sites: dict[str, LocalSlurmCluster]
) -> None:
    alpha = slurm_sites["alpha"]
    alice_token, bob_token = gateway.token("alice"), gateway.token("bob")
    with gateway.client(alice_token) as alice:
        cluster = alice.new_cluster(**CPU, workers=1)
        name = cluster.name
        try:
            client = cluster.get_client()
            client.wait_for_workers(1, timeout=90)
            assert client.submit(sum, range(11)).result(timeout=60) == 55
            # one job: the scheduler's core and the worker's
            ((scheduler_job, state, cpus),) = cluster_jobs(alpha, name)
            assert (state, cpus) == ("RUNNING", "2")
            # its owner sees the dashboard, once loaded; bob does not
            dashboard = f"{gateway.public_address}/clusters/{name}/status"

            def seen_by(token: str) -> requests.Response:
                auth = {"Authorization": f"jupyterhub {token}"}
                return requests.get(dashboard, headers=auth, timeout=30)

            wait_until(
                lambda: seen_by(alice_token).status_code == 200, timeout=60, what="dashboard"
            )
            assert "Dask" in seen_by(alice_token).text
            refused = seen_by(bob_token)
            assert refused.status_code == 403 and "Dask" not in refused.text
            # scaled to 0: the worker goes, the job stays for the scheduler, which still works
            cluster.scale(0)
            wait_until(
                lambda: not client.scheduler_info(n_workers=-1)["workers"],
                timeout=60,
                what="no worker left",
            )
            assert [j[0] for j in cluster_jobs(alpha, name)] == [scheduler_job]
            # scaled up again: a worker in a job of its own
            cluster.scale(1)
            client.wait_for_workers(1, timeout=90)
            jobs = cluster_jobs(alpha, name)
            assert len(jobs) == 2 and scheduler_job in [j[0] for j in jobs], jobs
            assert client.submit(sum, range(4)).result(timeout=60) == 6
            client.close()
        finally:
            cluster.shutdown()
    # shut down: every job of the cluster is cancelled
    wait_until(
        lambda: not [j for j in gateway_jobs(alpha, "alice") if j[1] == f"dg-{name}"],
        timeout=60,
        what=f"Slurm jobs of cluster {name} gone",
    )
