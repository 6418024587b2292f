"""The Dask Gateway as a hub service, on the real Slurm sites, through the real hub.

Clusters are created with hub tokens of signed-in users (scope
``access:services!service=dask-gateway``); their schedulers and workers are Slurm jobs of the
user, named ``dg-<cluster>``, which ``squeue`` must no longer list once a cluster is gone.
"""

from __future__ import annotations

import gc
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from continuum_federation.slurm import LocalSlurmCluster
from continuum_hub.gateway.quickstart import parse_phases
from fixtures.gateway import HubGateway, gateway_jobs
from fixtures.hub import api, hub_login, server_environ, stop_server, wait_for_server
from fixtures.slurm import wait_until

pytestmark = [
    pytest.mark.gateway,
    pytest.mark.integration,
    pytest.mark.slow,
    # dask_gateway.Gateway.__del__ closes an already closed client again and raises (upstream)
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

CPU = {"site": "alpha", "worker_cores": 1, "worker_memory_gb": 1, "walltime_minutes": 30}


@pytest.fixture(autouse=True)
def _collect_clients() -> Iterator[None]:
    """Collect this test's closed gateway clients here, where their upstream __del__ warning is
    filtered (see ``pytestmark``), not in whichever test runs next."""
    yield
    gc.collect()


@pytest.fixture(scope="module")
def alice_token(gateway: HubGateway) -> str:
    return gateway.token("alice")


@pytest.fixture(scope="module")
def bob_token(gateway: HubGateway) -> str:
    return gateway.token("bob")


def no_jobs_left(site: LocalSlurmCluster, cluster_name: str) -> None:
    wait_until(
        lambda: not [j for j in gateway_jobs(site) if j[1] == f"dg-{cluster_name}"],
        timeout=60,
        what=f"Slurm jobs of cluster {cluster_name} gone",
    )


def test_cluster_runs_as_the_user_and_leaves_no_job(
    gateway: HubGateway, alice_token: str, slurm_sites: dict[str, LocalSlurmCluster]
) -> None:
    with gateway.client(alice_token) as alice:
        cluster = alice.new_cluster(**CPU)
        name = cluster.name
        try:
            cluster.scale(2)
            client = cluster.get_client()
            client.wait_for_workers(2, timeout=120)
            assert client.submit(sum, range(101)).result(timeout=60) == 5050
            owners = set(client.run(lambda: os.environ["USER"]).values())
            assert owners == {"alice"}
            jobs = [j for j in gateway_jobs(slurm_sites["alpha"], "alice") if j[1] == f"dg-{name}"]
            assert len(jobs) == 3, jobs  # the scheduler and two workers
            client.close()
        finally:
            cluster.shutdown()
    no_jobs_left(slurm_sites["alpha"], name)


def test_other_users_and_strangers_are_refused(
    gateway: HubGateway, alice_token: str, bob_token: str
) -> None:
    with gateway.client(alice_token) as alice:
        cluster = alice.new_cluster(**CPU)
        try:
            name = cluster.name
            dashboard = f"{gateway.public_address}/clusters/{name}/status"
            # the owner, by token and by browser sign-in through the hub
            assert cluster.dashboard_link == dashboard
            wait_until(
                lambda: (
                    gateway.api("GET", f"/v1/clusters/{name}", alice_token).json()["status"]
                    == "RUNNING"
                ),
                timeout=60,
            )
            owner = {"Authorization": f"jupyterhub {alice_token}"}

            def owner_sees_dashboard() -> bool:
                page = requests.get(dashboard, headers=owner, timeout=30)
                return page.status_code == 200 and "Dask" in page.text

            # the scheduler loads its dashboard just after its first heartbeat (scheduler_setup)
            wait_until(owner_sees_dashboard, timeout=60, what="the owner's dashboard")
            browser = hub_login(gateway.hub, gateway.idp, "alice")
            page = browser.get(dashboard, timeout=30)
            assert page.status_code == 200 and "Dask" in page.text, page.url
            # bob: his token and his browser session
            for path in (f"/v1/clusters/{name}", f"/v1/clusters/{name}/scale"):
                method = "POST" if path.endswith("scale") else "GET"
                refused = gateway.api(method, path, bob_token, json={"count": 1})
                assert refused.status_code == 403, refused.text
            assert gateway.api("DELETE", f"/v1/clusters/{name}", bob_token).status_code == 403
            other = requests.get(
                dashboard, headers={"Authorization": f"jupyterhub {bob_token}"}, timeout=30
            )
            assert other.status_code == 403 and "Dask" not in other.text
            bob = hub_login(gateway.hub, gateway.idp, "bob")
            assert bob.get(dashboard, timeout=30).status_code == 403
            # no credentials: sent to the hub's sign-in, never the dashboard
            stranger = requests.get(dashboard, allow_redirects=False, timeout=30)
            assert stranger.status_code == 302
            assert "/hub/api/oauth2/authorize" in stranger.headers["Location"]
            assert gateway.api("GET", f"/v1/clusters/{name}", None).status_code == 401
            # a token the hub does not know
            assert gateway.api("GET", "/v1/clusters/", "not-a-token").status_code == 401
        finally:
            cluster.shutdown()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"worker_cores": 64}, "worker_cores must be <="),
        ({"adaptive_maximum": 50}, "adaptive_maximum must be <="),
        ({"workers": 50}, "workers must be <="),
        ({"site": "beta", "worker_gpus": 1}, "'beta' is not a valid option for site"),
        ({"walltime_minutes": 100000}, "walltime"),
        ({"colour": "red"}, "Unknown fields"),
    ],
    ids=["cores", "adaptive", "start-workers", "site-of-other-vo", "walltime", "unknown"],
)
def test_oversize_requests_are_refused_clearly(
    gateway: HubGateway, bob_token: str, options: dict[str, object], message: str
) -> None:
    response = gateway.api("POST", "/v1/clusters/", bob_token, json={"cluster_options": options})
    assert response.status_code == 422
    assert message in response.json()["error"], response.json()


def test_gpu_workers_get_their_gpu_from_slurm(
    gateway: HubGateway, alice_token: str, slurm_sites: dict[str, LocalSlurmCluster]
) -> None:
    with gateway.client(alice_token) as alice:
        cluster = alice.new_cluster(
            site="beta", worker_gpus=1, worker_cores=1, worker_memory_gb=1, environment="cupy"
        )
        try:
            cluster.scale(1)
            client = cluster.get_client()
            client.wait_for_workers(1, timeout=120)
            seen = client.run(
                lambda: (
                    os.environ.get("CUDA_VISIBLE_DEVICES"),
                    os.environ.get("CONTINUUM_ENVIRONMENT"),
                )
            )
            ((devices, environment),) = seen.values()
            assert devices not in (None, ""), seen
            assert environment == "cupy"
            # the GPU is a dask resource: a task asking for it runs
            future = client.submit(lambda: "on a GPU worker", resources={"GPU": 1})
            assert future.result(timeout=60) == "on a GPU worker"
            client.close()
        finally:
            cluster.shutdown()
    wait_until(lambda: not gateway_jobs(slurm_sites["beta"], "alice"), timeout=60)


def test_adaptive_bounds_from_the_options_start_workers(
    gateway: HubGateway, alice_token: str
) -> None:
    with gateway.client(alice_token) as alice:
        cluster = alice.new_cluster(**CPU, adaptive_minimum=1, adaptive_maximum=2)
        try:
            client = cluster.get_client()
            client.wait_for_workers(1, timeout=120)  # nobody called scale()
            client.close()
        finally:
            cluster.shutdown()


def python_as(username: str, code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with the project's Python as ``username``, ``env`` passed in the
    environment (never on the command line: it holds a token)."""
    names = ",".join(sorted(env))
    return subprocess.run(
        ["sudo", "-n", "-u", username, f"--preserve-env={names}", sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


ZERO_CONFIG = """
from dask_gateway import Gateway, GatewayCluster
assert Gateway().list_clusters() == []
cluster = GatewayCluster(site="alpha", worker_cores=1, worker_memory_gb=1, shutdown_on_close=False)
print(cluster.name)
cluster.close()
"""


def test_servers_need_no_configuration_and_take_their_clusters_along(
    gateway: HubGateway, alice_token: str, slurm_sites: dict[str, LocalSlurmCluster]
) -> None:
    hub = gateway.hub
    hub_login(hub, gateway.idp, "alice")
    spawn = api(hub, "POST", "/users/alice/server", json={"user_options": {"site": "alpha"}})
    assert spawn.status_code in (201, 202), spawn.text
    try:
        wait_for_server(hub, "alice")
        server = server_environ(hub, "alice")
        assert server["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
        env = {k: v for k, v in server.items() if k.startswith(("DASK_GATEWAY__", "JUPYTERHUB_"))}
        # Gateway() and GatewayCluster() with the server's own token and no arguments
        created = python_as("alice", ZERO_CONFIG, env)
        assert created.returncode == 0, created.stderr
        name = created.stdout.split()[-1]
        status = gateway.api("GET", f"/v1/clusters/{name}", alice_token).json()
        assert status["status"] in ("PENDING", "RUNNING"), status
        # the jobs get a fresh access token from the token agent (the server token's scope)
        staging = Path(pwd.getpwnam("alice").pw_dir) / ".dask-gateway" / name
        bearer = wait_until(
            lambda: (staging / "bearer_token").exists() and staging / "bearer_token",
            timeout=60,
            what="BEARER_TOKEN_FILE of the cluster's jobs",
        )
        assert bearer.stat().st_mode & 0o077 == 0 and bearer.read_text().strip()
    finally:
        stop_server(hub, "alice")
    # stopping the server stopped the cluster and its jobs
    wait_until(
        lambda: (
            gateway.api("GET", f"/v1/clusters/{name}", alice_token).json()["status"]
            in ("STOPPED", "FAILED")
        ),
        timeout=60,
        what="cluster stopped with the server",
    )
    no_jobs_left(slurm_sites["alpha"], name)


def test_a_restarted_gateway_keeps_live_clusters(gateway: HubGateway, alice_token: str) -> None:
    with gateway.client(alice_token) as alice:
        cluster = alice.new_cluster(**CPU)
        try:
            cluster.scale(1)
            client = cluster.get_client()
            client.wait_for_workers(1, timeout=120)
            client.close()
            before = gateway.pid()
            assert before is not None
            os.kill(before, signal.SIGTERM)
            # the hub notices its service ended (its next poll) and starts it again
            wait_until(lambda: gateway.pid() not in (None, before), timeout=120)
            gateway.wait_healthy()
            # the cluster lived on: the restarted gateway knows it, connects to it, scales it
            again = alice.connect(cluster.name)
            assert alice.get_cluster(cluster.name).status.name == "RUNNING"
            client = again.get_client()
            assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
            again.scale(2)
            client.wait_for_workers(2, timeout=120)
            client.close()
            again.close()  # connected with shutdown_on_close=False: the cluster stays
        finally:
            cluster.shutdown()


# -- workers started with the cluster (the option ``workers``, continuum_hub.gateway.quickstart) --


def hub_log(gateway: HubGateway) -> str:
    return (gateway.hub.state_dir / "jupyterhub.log").read_text(errors="replace")


def test_workers_are_submitted_with_the_scheduler(
    gateway: HubGateway, alice_token: str, slurm_sites: dict[str, LocalSlurmCluster]
) -> None:
    with gateway.client(alice_token) as alice:
        started = time.monotonic()
        cluster = alice.new_cluster(**CPU, workers=2)
        name = cluster.name
        try:
            client = cluster.get_client()
            client.wait_for_workers(2, timeout=90)  # no scale(): they came with the cluster
            first = time.monotonic() - started
            jobs = [j for j in gateway_jobs(slurm_sites["alpha"], "alice") if j[1] == f"dg-{name}"]
            # the scheduler with the first worker in its job, the second worker: no third one
            assert len(jobs) == 2, jobs
            assert client.submit(sum, range(101)).result(timeout=60) == 5050
            # queued right after the scheduler's job (their address: the staging folder's
            # scheduler.json), not once the cluster ran
            log = hub_log(gateway)
            submitted = log.index(f"scheduler of cluster {name}")
            queued = log.index(f"Cluster {name}: 1 workers queued with its scheduler")
            assert submitted < queued < log.index(f"Cluster {name} is running"), log[submitted:]
            # the cluster scales as any other; that heartbeat reports workers: the phases line
            cluster.scale(1)
            wait_until(
                lambda: len(client.scheduler_info(n_workers=-1)["workers"]) == 1,
                timeout=60,
                what="one worker left",
            )
            wait_until(lambda: name in parse_phases(hub_log(gateway)), timeout=30, what="phases")
            phases = parse_phases(hub_log(gateway))[name]
            assert phases["scheduler submitted"] <= phases["first worker submitted"]
            assert phases["address known"] <= phases["running"] <= first
            client.close()
        finally:
            cluster.shutdown()
    no_jobs_left(slurm_sites["alpha"], name)
