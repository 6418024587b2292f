"""The Clusters panel's routes (``continuum/clusters…``) on a real Jupyter server and gateway.

The gateway is a real ``dask-gateway-server`` (``fixtures.local_gateway``: its local backend,
simple authentication); the Slurm-backed, hub-managed gateway is exercised by the browser test.
A cluster made in code with ``dask_gateway.Gateway`` (as in a notebook) must show in the
routes' list, scale and stop through them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from lab_support import (
    JOB_ENV,
    LabServer,
    call,
    isolated_jupyter_env,
    listed,
    local_gateway_fixture,
    start_lab_server,
)

from continuum_federation.process import free_port
from continuum_lab.clusters import ClusterManager, GatewayError
from fixtures.local_gateway import LocalGateway
from fixtures.slurm import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.gateway, pytest.mark.integration, pytest.mark.slow]

WAIT = 60.0


gateway = local_gateway_fixture(max_workers=3)


@pytest.fixture(scope="module")
def server(gateway: LocalGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A Jupyter server for alice with the zero-config gateway environment."""
    home = tmp_path_factory.mktemp("lab-clusters")
    env = isolated_jupyter_env(home, **JOB_ENV, **gateway.env("alice"))
    lab = start_lab_server(Path(sys.executable), home, env)
    try:
        yield lab
    finally:
        lab.process.stop()


@pytest.fixture
def code_cluster(gateway: LocalGateway) -> Iterator[str]:
    """A cluster alice starts from code, as in a notebook; shut down afterwards if still there."""
    with gateway.gateway("alice") as client:
        name = client.submit()  # what GatewayCluster() does first
        try:
            yield name
        finally:
            if any(c.name == name for c in client.list_clusters()):
                client.stop_cluster(name)


def test_a_cluster_made_in_code_is_listed_scaled_and_stopped(
    server: LabServer, gateway: LocalGateway, code_cluster: str
) -> None:
    row = wait_until(
        lambda: (r := listed(server)[code_cluster])["status"] == "running" and r,
        WAIT,
        0.5,
        "cluster running",
    )
    assert row["options"] == {"worker_cores": 1, "worker_memory_gb": 0.5}
    assert row["dashboard_link"] == f"{gateway.address}/clusters/{code_cluster}/status"
    assert row["age_seconds"] >= 0 and row["start_time"].endswith("Z")
    assert "tls_key" not in row and "tls_cert" not in row
    assert requests.get(row["dashboard_link"], timeout=10).status_code == 200

    answer = call(server, "POST", "clusters/scale", {"name": code_cluster, "count": 2})
    assert answer.status_code == 200, answer.text
    row = wait_until(
        lambda: (r := listed(server)[code_cluster])["workers"] == 2 and r,
        WAIT,
        0.5,
        "two workers connected",
    )
    assert row["threads"] == 2
    assert row["memory_bytes"] == 2 * 2**29

    # above the gateway's cluster_max_workers (3): capped, and said so
    capped = call(server, "POST", "clusters/scale", {"name": code_cluster, "count": 5}).json()
    assert "3" in capped["message"]

    assert call(server, "POST", "clusters/stop", {"name": code_cluster}).status_code == 200
    wait_until(lambda: code_cluster not in listed(server), WAIT, 0.5, "cluster gone")
    with gateway.gateway("alice") as client:
        assert code_cluster not in [c.name for c in client.list_clusters()]


def test_a_cluster_made_in_the_panel_is_seen_by_code(
    server: LabServer, gateway: LocalGateway
) -> None:
    options = call(server, "GET", "clusters/options").json()["cluster_options"]
    assert [o["field"] for o in options] == ["worker_cores", "worker_memory_gb"]
    made = call(server, "POST", "clusters", {"cluster_options": {"worker_memory_gb": 1.0}})
    assert made.status_code == 201, made.text
    name = made.json()["name"]
    try:
        with gateway.gateway("alice") as client:
            report = client.get_cluster(name)
            assert report.options == {"worker_cores": 1, "worker_memory_gb": 1.0}
        assert listed(server)[name]["options"]["worker_memory_gb"] == 1.0
        wait_until(lambda: listed(server)[name]["status"] == "running", WAIT, 0.5, "running")
        adapt = call(server, "POST", "clusters/adapt", {"name": name, "minimum": 0, "maximum": 2})
        assert adapt.status_code == 200, adapt.text
    finally:
        call(server, "POST", "clusters/stop", {"name": name})


def test_other_users_clusters_are_not_listed(server: LabServer, gateway: LocalGateway) -> None:
    with gateway.gateway("bob") as client:
        name = client.submit()
        try:
            assert name not in listed(server)
            # nor can alice stop it
            refused = call(server, "POST", "clusters/stop", {"name": name})
            assert refused.status_code == 403, refused.text
            assert name in [c.name for c in client.list_clusters()]
        finally:
            client.stop_cluster(name)


@pytest.mark.parametrize(
    "path,body,status,message",
    [
        ("clusters/scale", {"name": "abc", "count": -1}, 400, "whole number"),
        ("clusters/scale", {"name": "abc", "count": "2"}, 400, "whole number"),
        ("clusters/scale", {"name": "abc", "count": True}, 400, "whole number"),
        ("clusters/scale", {"name": "../../api/v1/clusters", "count": 1}, 400, "cluster name"),
        ("clusters/scale", {"name": "0123abcd", "count": 1}, 404, "not found"),
        ("clusters/adapt", {"name": "abc", "minimum": 3, "maximum": 1}, 400, "exceed"),
        ("clusters/stop", {"name": "a b"}, 400, "cluster name"),
        ("clusters/stop", ["abc"], 400, "JSON object"),
        ("clusters", {"cluster_options": {"worker_cores": 99}}, 400, "worker_cores"),
        ("clusters", {"cluster_options": {"nonsense": 1}}, 400, "nonsense"),
        ("clusters", {"cluster_options": "big"}, 400, "JSON object"),
    ],
    ids=[
        "negative-count",
        "text-count",
        "bool-count",
        "path-in-name",
        "unknown-cluster",
        "min-above-max",
        "space-in-name",
        "body-not-object",
        "option-out-of-range",
        "unknown-option",
        "options-not-object",
    ],
)
def test_bad_requests_are_refused_with_a_message(
    server: LabServer, path: str, body: Any, status: int, message: str
) -> None:
    response = call(server, "POST", path, body)
    assert response.status_code == status, response.text
    assert message.lower() in response.json()["message"].lower()


def manager(**environ: str) -> ClusterManager:
    return ClusterManager(environ=environ)


async def test_an_unreachable_gateway_is_reported() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(GatewayError) as caught:
        await manager(DASK_GATEWAY__ADDRESS=address, JUPYTERHUB_API_TOKEN="t").list_clusters()
    assert caught.value.status == 502
    assert f"Dask Gateway at {address} cannot be reached" in caught.value.message


async def test_a_server_without_gateway_says_so() -> None:
    with pytest.raises(GatewayError) as caught:
        await manager(JUPYTERHUB_API_TOKEN="t").list_clusters()
    assert caught.value.status == 503 and "DASK_GATEWAY__ADDRESS" in caught.value.message


def test_the_hub_token_authenticates_by_default() -> None:
    endpoint = manager(
        DASK_GATEWAY__ADDRESS="http://gw:8000/", JUPYTERHUB_API_TOKEN="secret"
    ).endpoint
    assert endpoint.headers == {"Authorization": "jupyterhub secret"}
    assert endpoint.address == endpoint.public_address == "http://gw:8000"
    assert "secret" not in repr(endpoint)


def test_an_unreachable_gateway_is_an_error_answer_of_the_route(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    env = isolated_jupyter_env(
        tmp_path,
        **JOB_ENV,
        **{**gateway.env("alice"), "DASK_GATEWAY__ADDRESS": f"http://127.0.0.1:{free_port()}"},
    )
    lab = start_lab_server(Path(sys.executable), tmp_path, env)
    try:
        response = call(lab, "GET", "clusters")
        assert response.status_code == 502
        assert "cannot be reached" in response.json()["message"]
    finally:
        lab.process.stop()
