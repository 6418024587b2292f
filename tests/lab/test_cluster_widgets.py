"""The notebook widgets of ``continuum_widgets.cluster`` driving a real ``dask-gateway-server``.

``fixtures.local_gateway`` (the gateway's local backend) stands in for the hub's gateway; the
buttons are clicked as in a notebook (ipywidgets' ``Button.click``). Zero configuration is
checked in a subprocess with only the ``DASK_GATEWAY__*`` environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lab_support import local_gateway_fixture

from continuum_widgets.cluster import ClusterControls, ClusterLauncher, cluster_status
from fixtures.local_gateway import LocalGateway
from fixtures.slurm import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.gateway, pytest.mark.integration, pytest.mark.slow]

WAIT = 60.0


gateway = local_gateway_fixture(max_workers=2)


def names(gateway: LocalGateway, user: str = "alice") -> list[str]:
    with gateway.gateway(user) as client:
        return [c.name for c in client.list_clusters()]


def test_the_launcher_creates_a_cluster_with_the_form_options(gateway: LocalGateway) -> None:
    launcher = ClusterLauncher(gateway=gateway.gateway("alice"))
    assert set(launcher.options) == {"worker_cores", "worker_memory_gb"}
    launcher.options.worker_memory_gb = 1.0  # what typing into the form does
    launcher.create_button.click()
    cluster = launcher.cluster
    try:
        assert cluster is not None, launcher.message.value
        assert cluster.name in names(gateway)
        with gateway.gateway("alice") as client:
            assert client.get_cluster(cluster.name).options["worker_memory_gb"] == 1.0
        controls = launcher.controls
        assert isinstance(controls, ClusterControls) and controls in launcher.children
        assert cluster.dashboard_link in controls.dashboard.value

        controls.workers.value = 1
        controls.scale_button.click()
        wait_until(lambda: len(cluster.scheduler_info["workers"]) == 1, WAIT, 0.2, "a worker")
        controls.refresh()
        assert controls.status.value == "running: 1 worker, 1 core, 1.00 GiB"

        # above the gateway's limit (2): capped, and the widget says so
        controls.workers.value = 5
        controls.scale_button.click()
        assert "exceed" in controls.message.value

        controls.minimum.value, controls.maximum.value = 3, 1
        controls.adapt_button.click()
        assert "must not exceed" in controls.message.value

        controls.shutdown_button.click()
        assert controls.shutdown_button.disabled
        wait_until(lambda: cluster.name not in names(gateway), WAIT, 0.2, "cluster gone")
    finally:
        if cluster is not None:
            cluster.close(shutdown=True)


def test_a_refused_request_is_shown_in_the_widget(gateway: LocalGateway) -> None:
    launcher = ClusterLauncher(gateway=gateway.gateway("alice"))
    before = names(gateway)
    # the gateway refuses the creation (here: the credentials went stale meanwhile)
    launcher.gateway.auth.password = "not-the-password"
    assert launcher.create() is None
    assert "Could not create the cluster" in launcher.message.value
    assert "401" in launcher.message.value or "Unauthorized" in launcher.message.value
    assert not launcher.create_button.disabled
    assert names(gateway) == before


def test_status_line_counts_workers_cores_and_memory() -> None:
    class Fake:
        status = "running"
        scheduler_info = {
            "workers": {
                "a": {"nthreads": 2, "memory_limit": 2**30},
                "b": {"nthreads": 1, "memory_limit": 2**30},
            }
        }

    assert cluster_status(Fake()) == "running: 2 workers, 3 cores, 2.00 GiB"
    Fake.scheduler_info = {}
    assert cluster_status(Fake()) == "running: 0 workers, 0 cores, 0 B"


def test_gateway_and_gateway_cluster_need_no_arguments(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    """What a notebook does, with nothing but the server's zero-config environment."""
    code = (
        "from dask_gateway import Gateway, GatewayCluster\n"
        "from continuum_widgets import ClusterLauncher\n"
        "launcher = ClusterLauncher()\n"
        "print(sorted(launcher.options))\n"
        "with GatewayCluster() as cluster:\n"
        "    print(cluster.name in [c.name for c in Gateway().list_clusters()])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASK_", "JUPYTERHUB_"))}
    env.update(gateway.env("alice"), HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["['worker_cores', 'worker_memory_gb']", "True"]
