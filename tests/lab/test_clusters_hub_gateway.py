"""The Clusters routes against the hub-managed Dask Gateway (``fixtures.gateway``) on Slurm.

A real Jupyter server with ``continuum_lab`` gets exactly the environment a spawned server gets
(``gateway.environment(token)``: ``DASK_GATEWAY__*`` and a hub token of alice); clusters made
in code by alice and bob are Slurm jobs on site ``alpha``. The routes must list alice's (with
its workers, read through the gateway's owner-only dashboard), scale it, refuse to touch bob's,
and stop hers.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import xarray as xr
from lab_support import (
    JOB_ENV,
    LabServer,
    call,
    isolated_jupyter_env,
    listed,
    start_lab_server,
)

from continuum_widgets.analysis import array_module_name, rfi_statistics, synthetic_visibilities
from fixtures.gateway import HubGateway, gateway_jobs
from fixtures.slurm import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.gateway, pytest.mark.integration, pytest.mark.slow]

WAIT = 180.0
OPTIONS = {"site": "alpha", "worker_cores": 1, "worker_memory_gb": 1}


@pytest.fixture(scope="module")
def alice_token(gateway: HubGateway) -> str:
    return gateway.token("alice")


@pytest.fixture(scope="module")
def server(
    gateway: HubGateway, alice_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabServer]:
    """alice's server with the zero-configuration gateway environment of a spawned one."""
    home = tmp_path_factory.mktemp("lab-hub-gateway")
    env = isolated_jupyter_env(home, **JOB_ENV, **gateway.environment(alice_token))
    lab = start_lab_server(Path(sys.executable), home, env)
    try:
        yield lab
    finally:
        lab.process.stop()


def test_a_slurm_cluster_made_in_code_is_listed_scaled_and_stopped(
    server: LabServer, gateway: HubGateway, alice_token: str, slurm_sites
) -> None:
    with gateway.client(alice_token) as client:
        name = client.submit(**OPTIONS)
        try:
            row = wait_until(
                lambda: (r := listed(server).get(name)) and r["status"] == "running" and r,
                WAIT,
                1.0,
                "cluster running",
            )
            assert row["options"]["site"] == "alpha"
            # made in code without a name: the gateway made one up, unique among alice's
            assert row["options"]["name"] == "alpha-interactive-1"
            taken = {"site": "alpha", "name": "alpha-interactive-1"}
            refused = call(server, "POST", "clusters", {"cluster_options": taken})
            assert refused.status_code == 400, refused.text
            assert refused.json()["message"] == (
                "Dask Gateway: you already have an active cluster named 'alpha-interactive-1'"
            )
            assert row["dashboard_link"] == f"{gateway.public_address}/clusters/{name}/status"
            assert row["workers"] == 0  # read from the scheduler through the gateway

            assert call(server, "POST", "clusters/scale", {"name": name, "count": 1}).ok
            row = wait_until(
                lambda: (r := listed(server)[name])["workers"] == 1 and r, WAIT, 1.0, "a worker"
            )
            assert row["threads"] == 1
            assert len(gateway_jobs(slurm_sites["alpha"], "alice")) >= 2  # scheduler + worker

            assert call(server, "POST", "clusters/stop", {"name": name}).ok
            wait_until(lambda: name not in listed(server), WAIT, 1.0, "cluster gone")
            wait_until(
                lambda: not gateway_jobs(slurm_sites["alpha"], "alice"), WAIT, 1.0, "jobs gone"
            )
        finally:
            if name in [c.name for c in client.list_clusters()]:
                client.stop_cluster(name)


def test_another_users_cluster_is_neither_listed_nor_stopped(
    server: LabServer, gateway: HubGateway
) -> None:
    with gateway.client(gateway.token("bob")) as client:
        name = client.submit(**OPTIONS)
        try:
            assert name not in listed(server)
            refused = call(server, "POST", "clusters/stop", {"name": name})
            assert refused.status_code == 403, refused.text
            assert name in [c.name for c in client.list_clusters()]
        finally:
            client.stop_cluster(name)


def test_the_options_are_the_users_own(server: LabServer) -> None:
    options = call(server, "GET", "clusters/options").json()["cluster_options"]
    sites = next(o for o in options if o["field"] == "site")["spec"]["options"]
    assert sorted(sites) == ["alpha", "beta"]  # alice's entitlements: both sites


def test_the_sample_analysis_gives_identical_results_on_slurm_workers(
    gateway: HubGateway, alice_token: str
) -> None:
    """``continuum_widgets.analysis`` on a gateway cluster (CPU workers here: numpy) equals the
    local computation exactly."""
    vis = synthetic_visibilities(
        n_time=200, n_baseline=16, n_channel=48, seed=9, chunks=(50, 16, 24)
    )
    local = rfi_statistics(vis, scheduler="threads")
    with gateway.client(alice_token) as client:
        cluster = client.new_cluster(**OPTIONS)
        try:
            cluster.scale(1)
            with cluster.get_client() as dask_client:
                dask_client.wait_for_workers(1, timeout=WAIT)
                remote = rfi_statistics(vis)
                assert set(dask_client.run(array_module_name).values()) == {"numpy"}
        finally:
            cluster.shutdown()
    xr.testing.assert_identical(local, remote)
    assert remote.rfi_channel.values.nonzero()[0].tolist() == [17, 18]
