"""The hub killed with SIGKILL under load: sessions, clusters and jobs live on (issue 17 item 3).

A hub of its own (the session's hub is shared by the whole run and is not killed): the standard
hub configuration (``fixtures.hub.admin_hub``) behind the external proxy and under the
supervisor (:mod:`continuum_federation.supervisor`), signing in at a provider of its own, on a
Slurm site of its own (``kappa``, on the session's munged) big enough for 20 servers and two
Dask clusters at once.  The servers are lean — ``jupyterhub-singleuser`` with every other
server extension switched off — since what counts is their connection through the proxy, not
JupyterLab.  With all of them answering, the hub is killed with SIGKILL; while the supervisor
restarts it every server is polled through the proxy without pause.  Then: every poll
succeeded, the hub was back within 15 s, the restarted hub lists the same servers with the same
jobs, the clusters keep their workers, Slurm saw no job submitted or cancelled, and no process
of the old hub is left (its services, in sessions of their own, included).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from continuum_federation.hub import LocalHub, lean_server_config
from continuum_federation.idp import OpenIDProvider, hub_client, make_password, with_passwords
from continuum_federation.munge import MungeDaemon
from continuum_federation.process import descendants, free_port, port_open
from continuum_federation.slurm import LocalSlurmCluster
from continuum_federation.slurm_spec import parse_cluster_spec
from continuum_hub.gateway import ACCESS_SCOPE
from fixtures.gateway import HubGateway, user_token
from fixtures.hub import admin_hub, api
from fixtures.slurm import squeue, wait_until
from fixtures.tokens import token_registry

pytestmark = [
    pytest.mark.integration,
    pytest.mark.deploy,
    pytest.mark.gateway,
    pytest.mark.slow,
    # dask_gateway.Gateway.__del__ closes an already closed client again and raises (upstream)
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

SITE = "kappa"
USERS = ("alice", "dave")
SERVERS_PER_USER = 10
BACK_WITHIN = 15.0  # seconds from SIGKILL to /hub/health through the proxy
KAPPA_SPEC = {
    "nodes": [{"name": "kappa-n1", "cpus": 32, "memory_mb": 65536}],
    "partitions": [
        {"name": "interactive", "default": True, "max_time": "8:00:00"},
        {"name": "batch", "max_time": "1-00:00:00"},
    ],
}
CLUSTER = {"site": SITE, "worker_cores": 1, "worker_memory_gb": 1, "walltime_minutes": 30}


@pytest.fixture(scope="module")
def kappa(munge: MungeDaemon, federation_root: Path) -> Iterator[LocalSlurmCluster]:
    """This module's own Slurm site (32 declared cores), stopped (its jobs cancelled) after."""
    spec = parse_cluster_spec(SITE, KAPPA_SPEC)
    with LocalSlurmCluster(SITE, spec, federation_root / "slurm", munge.socket) as site:
        yield site


@pytest.fixture(scope="module")
def restart_hub(
    federation_root: Path,
    repo_root: Path,
    kappa: LocalSlurmCluster,
    unix_users: list[str],
) -> Iterator[tuple[LocalHub, OpenIDProvider]]:
    """A started hub on ``kappa`` with a provider of its own; both stopped after."""
    port = free_port()
    idp = OpenIDProvider(
        federation_root / "idp-restart",
        repo_root,
        users=with_passwords(),
        clients=[hub_client(port, make_password() + make_password())],
        name="idp-restart",
    )
    hub = admin_hub(
        federation_root / "hub-restart",
        repo_root,
        idp,
        {SITE: kappa},
        port=port,
        registry_path=token_registry(
            repo_root, federation_root / "sites-restart.yaml", SITE, "Kappa (restart test)"
        ),
        extra_config={
            "JupyterHub": {"named_server_limit_per_user": SERVERS_PER_USER},
            "Spawner": {**lean_server_config()["Spawner"], "poll_interval": 2},
            "SiteSpawner": {"status_interval": 1},
        },
    )
    with idp, hub:
        yield hub, idp
    # the stop leaves nothing behind: no supervisor, hub, warm spare or service, no proxy
    wait_until(lambda: not hub_family(hub), timeout=30, what="the hub's processes gone")
    assert not port_open(hub.port)


def hub_family(hub: LocalHub) -> list[int]:
    """The processes of ``hub``: those with its environment (supervisor, hub, warm spare) and
    its services (their own environment names the hub's API and the service)."""
    config = f"CONTINUUM_HUB_CONFIG={hub.state_dir}/".encode()
    api_url = f"JUPYTERHUB_API_URL=http://127.0.0.1:{hub.api_port}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        if config in environ or (api_url in environ and b"JUPYTERHUB_SERVICE_NAME=" in environ):
            found.append(int(entry.name))
    return found


def server_url(hub: LocalHub, user: str, name: str) -> str:
    return f"{hub.url}/user/{user}/{name}/api/status"


def ready_servers(hub: LocalHub, user: str) -> dict[str, str]:
    """``{server name: job id}`` of ``user``'s ready servers, as the hub lists them."""
    response = api(hub, "GET", f"/users/{user}")
    response.raise_for_status()
    servers = response.json().get("servers", {})
    return {n: s["state"]["job_id"] for n, s in servers.items() if s.get("ready")}


def slurm_jobs(site: LocalSlurmCluster) -> dict[str, str]:
    """Every job the controller knows, recently ended ones too: ``{job id: state}``."""
    return {row[0]: row[1] for row in squeue(site, "--states=all", "--format=%i|%T")}


def process_table() -> dict[int, tuple[str, int]]:
    """``{pid: (start time, session id)}`` of every process (``/proc/PID/stat``)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        table[int(entry.name)] = (fields[19], int(fields[3]))
    return table


class Poller(threading.Thread):
    """GETs every server's ``/api/status`` through the proxy, round after round, until stopped;
    records each answer's time and whether it was a 200."""

    def __init__(self, targets: Mapping[str, str]) -> None:
        super().__init__(daemon=True)
        self.targets = dict(targets)  # url -> token
        self.answers: list[tuple[float, str, bool, str]] = []
        self.done = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        while not self.done.is_set():
            for url, token in self.targets.items():
                try:
                    response = session.get(
                        url, headers={"Authorization": f"token {token}"}, timeout=10
                    )
                    ok, detail = response.status_code == 200, str(response.status_code)
                except requests.RequestException as exc:
                    ok, detail = False, repr(exc)
                self.answers.append((time.monotonic(), url, ok, detail))

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=30)


def spawn_all(hub: LocalHub) -> dict[str, dict[str, str]]:
    """Start every user's named servers ``s1``… on ``kappa``; wait until all are ready."""
    options = {"site": SITE, "cores": 1, "memory_gb": 1}

    def spawn(path: str) -> requests.Response:
        return api(hub, "POST", path, json={"user_options": options})

    paths = [f"/users/{u}/servers/s{i}" for u in USERS for i in range(1, SERVERS_PER_USER + 1)]
    # at once: the hub holds each request until its server is up (up to 10 s)
    with ThreadPoolExecutor(len(paths)) as pool:
        for response in pool.map(spawn, paths):
            assert response.status_code in (201, 202), response.text
    wait_until(
        lambda: all(len(ready_servers(hub, u)) == SERVERS_PER_USER for u in USERS),
        timeout=180,
        interval=1,
        what=f"{len(USERS) * SERVERS_PER_USER} servers ready",
    )
    return {user: ready_servers(hub, user) for user in USERS}


def test_sigkilled_hub_comes_back_and_drops_nothing(
    restart_hub: tuple[LocalHub, OpenIDProvider], kappa: LocalSlurmCluster
) -> None:
    hub, idp = restart_hub
    tokens = {
        u: user_token(hub, idp, u, scopes=["access:servers!user", ACCESS_SCOPE]) for u in USERS
    }
    gateway = HubGateway(hub, idp)
    gateway.wait_healthy()
    # two Dask clusters (one per user, each with a worker started with its scheduler)
    clients = {u: gateway.client(tokens[u]) for u in USERS}
    clusters = {u: clients[u].new_cluster(**CLUSTER, workers=1) for u in USERS}
    try:
        check_restart(gateway, kappa, tokens, clients, clusters)
    finally:
        for user, cluster in clusters.items():
            with contextlib.suppress(Exception):  # the site's stop cancels what is left
                cluster.shutdown()
            clients[user].close()
        gc.collect()  # here, where the upstream warning is filtered


def check_restart(
    gateway: HubGateway,
    kappa: LocalSlurmCluster,
    tokens: Mapping[str, str],
    clients: Mapping[str, Any],
    clusters: Mapping[str, Any],
) -> None:
    """The test's body, once the clusters are asked for: 20 servers, then the kill."""
    hub = gateway.hub
    servers = spawn_all(hub)
    workers = {}
    for user, cluster in clusters.items():
        client = cluster.get_client()
        client.wait_for_workers(1, timeout=120)
        workers[user] = sorted(client.scheduler_info(n_workers=-1)["workers"])
        client.close()
    targets = {
        server_url(hub, user, name): tokens[user] for user in USERS for name in servers[user]
    }
    poller = Poller(targets)
    poller.start()
    try:
        # every server answers through the proxy before the kill
        wait_until(
            lambda: {url for _, url, ok, _ in poller.answers if ok} == set(targets),
            timeout=60,
            what="every server answering",
        )
        jobs_before = slurm_jobs(kappa)
        old_hub = hub.hub_pid
        assert old_hub is not None
        old = {old_hub: process_table()[old_hub], **process_table_of(descendants(old_hub))}
        old_sessions = {session for _, session in old.values()} - {process_table()[old_hub][1]}
        assert len(old) >= 5, old  # the hub and its services (culler, gateway and its proxy…)
        # what the teardown's check looks for: the hub and its services at least
        assert old_hub in hub_family(hub) and len(set(old) & set(hub_family(hub))) >= 5
        mark = len(hub.log(100000))

        os.kill(old_hub, signal.SIGKILL)
        killed = time.monotonic()
        wait_until(hub.healthy, timeout=60, interval=0.1, what="the hub back through the proxy")
        back = time.monotonic() - killed
        # keep polling a while after: the restarted hub re-checks routes and servers
        wait_until(
            lambda: all(ready_servers(hub, u) == servers[u] for u in USERS),
            timeout=60,
            interval=0.5,
            what="the restarted hub listing every server with its job",
        )
        gateway.wait_healthy()
    finally:
        poller.stop()

    log = hub.log(100000)[mark:]
    assert "was killed by SIGKILL" in log and "restarting it in" in log, log[-3000:]
    failures = [a for a in poller.answers if not a[2]]
    assert not failures, f"{len(failures)} failed polls, e.g. {failures[:5]}"
    during = {url for t, url, ok, _ in poller.answers if killed <= t <= killed + back and ok}
    assert during == set(targets), "not every server was polled while the hub was down"
    # no process of the old hub lingers, nor any in its services' sessions
    now = process_table()
    lingering = [pid for pid, (start, _) in old.items() if now.get(pid, ("", 0))[0] == start]
    assert not lingering, f"processes of the old hub still alive: {lingering}"
    assert not [pid for pid, (_, sid) in now.items() if sid in old_sessions]
    assert hub.hub_pid not in (None, old_hub)
    # the clusters keep their workers, through the restarted gateway
    for user, cluster in clusters.items():
        again = clients[user].connect(cluster.name)
        client = again.get_client()
        assert sorted(client.scheduler_info(n_workers=-1)["workers"]) == workers[user]
        assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
        client.close()
        again.close()  # connected with shutdown_on_close=False: the cluster stays
    # Slurm saw no job submitted or cancelled: the same jobs, all still running
    assert slurm_jobs(kappa) == jobs_before
    assert set(jobs_before.values()) == {"RUNNING"}
    print(f"hub back through the proxy {back:.1f} s after SIGKILL; {len(poller.answers)} polls")
    # last, so that a slow machine still shows whether everything else held
    assert back < BACK_WITHIN, f"the hub took {back:.1f} s to come back"


def process_table_of(pids: Mapping[int, int]) -> dict[int, tuple[str, int]]:
    """The :func:`process_table` rows of ``pids``."""
    table = process_table()
    return {pid: table[pid] for pid in pids if pid in table}
