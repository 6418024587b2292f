"""Gateway limits over time, on the real Slurm site: per-user totals and idle clusters.

The session hub gives every user a total of 3 workers over all their Dask clusters
(``GatewayLimits.default.max_total_workers``, see ``fixtures.hub``); what the gateway accepted
is checked in ``squeue``: every scheduler and worker is a Slurm job named ``dg-<cluster>``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from dask_gateway import GatewayWarning

from continuum_federation.slurm import LocalSlurmCluster
from fixtures.gateway import HubGateway, gateway_jobs
from fixtures.slurm import wait_until

pytestmark = [
    pytest.mark.gateway,
    pytest.mark.integration,
    pytest.mark.slow,
    # dask_gateway.Gateway.__del__ closes an already closed client again and raises (upstream)
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

CPU = {"site": "alpha", "worker_cores": 1, "worker_memory_gb": 1, "walltime_minutes": 30}
TOTAL = 3  # max_total_workers of the session hub


@pytest.fixture(autouse=True)
def _collect_clients() -> Iterator[None]:
    yield
    gc.collect()  # closed gateway clients warn here, where it is filtered


@pytest.fixture(scope="module")
def alice_token(gateway: HubGateway) -> str:
    return gateway.token("alice")


def jobs_of(site: LocalSlurmCluster, *clusters: str) -> int:
    """Slurm jobs (any state) of the named clusters: schedulers and workers."""
    names = {f"dg-{name}" for name in clusters}
    return sum(1 for job in gateway_jobs(site, "alice") if job[1] in names)


def wait_jobs(site: LocalSlurmCluster, cluster: str, count: int) -> None:
    wait_until(
        lambda: jobs_of(site, cluster) == count,
        timeout=120,
        interval=1,
        what=f"{count} Slurm jobs of cluster {cluster}",
    )


def test_totals_over_all_clusters_refuse_and_cap_clearly(
    gateway: HubGateway, alice_token: str, slurm_sites: dict[str, LocalSlurmCluster]
) -> None:
    alpha = slurm_sites["alpha"]
    with gateway.client(alice_token) as alice:
        for report in alice.list_clusters():  # leftovers of a failed test would count
            alice.stop_cluster(report.name)
        first = alice.new_cluster(**CPU)
        second = None
        try:
            first.scale(TOTAL)
            wait_jobs(alpha, first.name, 1 + TOTAL)  # the gateway accepted all three
            with pytest.raises(ValueError, match="no room for another cluster") as refused:
                alice.new_cluster(**CPU)
            message = str(refused.value)
            assert "your limit of 3 workers over all your clusters (the default)" in message
            assert "your other clusters use 3 workers" in message

            first.scale(1)
            wait_jobs(alpha, first.name, 2)
            second = alice.new_cluster(**CPU)
            with pytest.warns(GatewayWarning, match="Scaling to 2 workers instead of 3") as warned:
                second.scale(3)
            assert "your other clusters use 1 workers" in str(warned[0].message)
            wait_jobs(alpha, second.name, 1 + 2)
            # and the first cannot grow back into what the second holds now
            with pytest.warns(GatewayWarning, match="Scaling to 1 workers instead of 3"):
                first.scale(3)
            client = second.get_client()
            client.wait_for_workers(1, timeout=120)  # the second cluster works
            assert client.submit(sum, range(11)).result(timeout=60) == 55
            client.close()
            # nothing beyond the total was submitted: 2 schedulers and 3 workers
            assert jobs_of(alpha, first.name, second.name) == 2 + TOTAL
        finally:
            first.shutdown()
            if second is not None:
                second.shutdown()
    names = [first.name] + ([second.name] if second is not None else [])
    wait_until(
        lambda: jobs_of(alpha, *names) == 0, timeout=60, interval=1, what="no Slurm job left"
    )


def test_an_idle_cluster_stops_by_itself_and_leaves_no_job(
    gateway: HubGateway, alice_token: str, slurm_sites: dict[str, LocalSlurmCluster]
) -> None:
    alpha = slurm_sites["alpha"]
    with gateway.client(alice_token) as alice:
        # 15 s without work (the shortest a user may choose; the gateway's own is 30 minutes)
        cluster = alice.new_cluster(**CPU, idle_timeout_minutes=0.25)
        name = cluster.name
        try:
            assert jobs_of(alpha, name) == 1  # its scheduler runs (new_cluster waited for it)
            wait_until(
                lambda: alice.get_cluster(name).status.name in ("STOPPED", "FAILED"),
                timeout=180,
                interval=1,
                what=f"idle cluster {name} stopped by itself",
            )
            assert alice.get_cluster(name).status.name == "STOPPED"
            wait_until(
                lambda: jobs_of(alpha, name) == 0,
                timeout=60,
                interval=1,
                what=f"no Slurm job of cluster {name} left",
            )
        finally:
            cluster.shutdown()
