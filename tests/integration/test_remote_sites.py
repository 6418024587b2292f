"""Remote sites through a real hub (issue 17 item 4): ``alpha`` reached over SSH (the session's
private sshd as its login node: the hub's key opens the site's one login account, which runs
the users' commands through ``sudo -n -u``, a facility's model) and ``beta``
through its slurmrestd (``rest_auth/jwt``, the hub's token in a 0600 file), in a hub of their
own.  A server is spawned on each, side by side (its job submitted, polled and seen running
through the site's transport, as the user), then stopped (its job cancelled the same way).
Cutting the link to one site (stopping its sshd or slurmrestd) marks only that site unavailable
within one probe interval plus the probe's own time, and a spawn there is refused at once with
503; the site is back when the link is.

The hub's Dask Gateway runs clusters on both sites through the same transports: on ``alpha``
the gateway's launcher runs on the login node as the user (the login account's sudo rule
allows it, :func:`launcher_rule`), on ``beta`` the jobs stage their own folder.  A cluster on
each is created with dask_gateway's client, scaled to one worker, computes, and is shut down
with no job left; with a link cut, cluster requests on that site only are refused.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from continuum_federation.hub import LocalHub
from continuum_hub.gateway import ACCESS_SCOPE, launcher
from fixtures.gateway import (
    INTEGRATION_MARKS,
    HubGateway,
    gateway_jobs,
    wait_gateway_jobs_gone,
)
from fixtures.hub import (
    ADMIN_SCOPES,
    admin_hub,
    api,
    forget_named_servers,
    server_model,
    stop_server,
)
from fixtures.slurm import user_jobs, wait_until
from fixtures.sshd import LOGIN_ACCOUNT, SUDOERS_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.deploy]

#: the hub's per-site probe interval here (s): the link's loss must show within about one
PROBE_INTERVAL = 2.0
#: seconds the remote hub may take to answer (LocalHub's default: 90)
HUB_START_TIMEOUT = 180.0
#: the admin service's role (it replaces admin_hub's), which also reads the hub's metrics
ADMIN_ROLE = {
    "name": "test-admin",
    # tokens: users' gateway tokens are made through the API (no OIDC client for this hub)
    "scopes": [*ADMIN_SCOPES, "read:metrics", "tokens"],
    "services": ["test-admin"],
}
#: marks of the tests that use the gateway's client (its upstream __del__ warning filtered)
GATEWAY_MARKS = [
    m for m in INTEGRATION_MARKS if m.name in ("gateway", "filterwarnings", "usefixtures")
]
SITE_UP = re.compile(r'^continuum_site_up\{site="([a-z0-9-]+)"\} ([0-9.]+)$', re.MULTILINE)


#: the hub's settings: spawns and outages noticed within seconds, the admin role above
HUB_CONFIG = {
    "Spawner": {"poll_interval": 2},
    "SiteSpawner": {"status_interval": 1},
    "ContinuumMetrics": {"site_probe_interval": PROBE_INTERVAL, "site_probe_timeout": 5},
    # the gateway's own site probe, as often as the hub's
    "GatewayService": {
        "extra_gateway_config": {"SiteAvailability": {"interval": PROBE_INTERVAL, "timeout": 5}}
    },
    "JupyterHub": {"load_roles": [ADMIN_ROLE]},
}


def with_marks(marks: list[pytest.MarkDecorator]) -> Callable[[Any], Any]:
    """A decorator applying ``marks`` to a test."""

    def apply(test: Any) -> Any:
        for mark in marks:
            test = mark(test)
        return test

    return apply


def remote_registry(demo: Path, target: Path, connections: dict[str, dict[str, Any]]) -> Path:
    """The demo registry with each site's ``connections`` and no access rule, at ``target``."""
    registry = yaml.safe_load(demo.read_text())
    for entry in registry["sites"]:
        entry["connection"] = connections[entry["name"]]
        entry.pop("access", None)  # both sites open to everyone: no groups to set up
    target.write_text(yaml.safe_dump(registry))
    return target


@pytest.fixture(scope="module")
def remote_hub(
    federation_root, repo_root, idp, slurm_sites, unix_users, sshd, slurmrestd
) -> Iterator[LocalHub]:
    state = federation_root / "remote-hub"
    state.mkdir(exist_ok=True)
    ssh = sshd.connection(login_user=LOGIN_ACCOUNT)
    connections = {
        "alpha": {
            "transport": "ssh",
            **{key: value for key, value in dataclasses.asdict(ssh).items() if value is not None},
            "env": {"SLURM_CONF": str(slurm_sites["alpha"].conf_path)},
        },
        "beta": {
            "transport": "slurmrestd",
            "url": slurmrestd.url,
            "token_file": str(slurmrestd.token_file),
        },
    }
    demo = repo_root / "hub-config" / "sites.demo.yaml"
    path = remote_registry(demo, state / "sites.yaml", connections)
    hub = admin_hub(
        state / "hub", repo_root, idp, slurm_sites, registry_path=path, extra_config=HUB_CONFIG
    )
    # its managed services (the gateway among them) start one after the other: on a loaded
    # machine that takes more than LocalHub's default 90 s
    hub.start(timeout=HUB_START_TIMEOUT)
    try:
        assert api(hub, "POST", "/users/alice").status_code in (201, 409)
        yield hub
    finally:
        hub.stop()


def sites_up(hub: LocalHub) -> dict[str, bool]:
    """``continuum_site_up`` per site, from the hub's metrics."""
    token = hub.api_token  # type: ignore[attr-defined]
    response = requests.get(
        f"{hub.url}/hub/metrics", headers={"Authorization": f"token {token}"}, timeout=30
    )
    response.raise_for_status()
    return {site: value == "1.0" for site, value in SITE_UP.findall(response.text)}


def when_sites(hub: LocalHub, wanted: dict[str, bool], what: str) -> float:
    """Seconds until the probe reports ``wanted`` (polled; fails after 30 s)."""
    started = time.monotonic()
    wait_until(lambda: sites_up(hub) == wanted, timeout=30, interval=0.2, what=what)
    return time.monotonic() - started


#: alice's server on each site, started side by side: the default one over SSH, a named one
#: through slurmrestd
SERVERS = {"alpha": "", "beta": "rest"}


def server_path(name: str) -> str:
    return "/users/alice/server" if not name else f"/users/alice/servers/{name}"


def ready_server(hub: LocalHub, name: str) -> dict[str, Any]:
    """alice's server ``name`` once ready (polled; fails when it is gone or after 120 s)."""

    def ready() -> dict[str, Any] | None:
        model = api(hub, "GET", "/users/alice").json().get("servers", {}).get(name)
        assert model, f"server {name!r} of alice is gone; hub log:\n{hub.log()[-3000:]}"
        return model if model.get("ready") else None

    return wait_until(ready, timeout=120, interval=0.5, what=f"server {name!r} ready")


def test_servers_spawned_polled_and_cancelled_on_both_remote_sites(remote_hub, slurm_sites, sshd):
    log_start = len(sshd.log())
    for site, name in SERVERS.items():
        response = api(remote_hub, "POST", server_path(name), json={"user_options": {"site": site}})
        assert response.status_code in (201, 202), response.text
    jobs: dict[str, str] = {}
    try:
        for site, name in SERVERS.items():
            model = ready_server(remote_hub, name)
            jobs[site] = str(model["state"]["job_id"])
            assert model["state"]["request"]["site"] == site
            # alice's own job, which the hub polled to RUNNING through the site's transport
            assert (jobs[site], "RUNNING") in user_jobs(slurm_sites[site], "alice")
    finally:
        for name in SERVERS.values():
            api(remote_hub, "DELETE", server_path(name))
        forget_named_servers(remote_hub, "alice")
        stop_server(remote_hub, "alice")
    # every command on alpha logged in as the login account, none as alice
    logins = re.findall(r"Accepted publickey for (\S+)", sshd.log()[log_start:])
    assert logins and set(logins) == {LOGIN_ACCOUNT}, logins
    wait_until(
        lambda: (
            not any(
                job_id in dict(user_jobs(slurm_sites[site], "alice"))
                for site, job_id in jobs.items()
            )
        ),
        timeout=30,
        what=f"jobs {jobs} cancelled",
    )


@pytest.mark.parametrize("site", ["alpha", "beta"], ids=["sshd", "slurmrestd"])
@with_marks(GATEWAY_MARKS)
def test_cutting_one_sites_link_marks_only_that_site_unavailable(
    remote_hub, idp, slurm_sites, sshd, slurmrestd, launcher_rule, site
):
    link: tuple[Callable[[], None], Callable[[], None]] = (
        (sshd.pause, sshd.resume) if site == "alpha" else (slurmrestd.stop, slurmrestd.start)
    )
    other = "beta" if site == "alpha" else "alpha"
    when_sites(remote_hub, {site: True, other: True}, "both sites up")
    link[0]()
    try:
        took = when_sites(remote_hub, {site: False, other: True}, f"{site} down, {other} up")
        # one interval, plus the probe's own time on a loaded machine
        assert took < PROBE_INTERVAL + 6, f"{site} seen down after {took:.1f} s"
        started = time.monotonic()
        refused = api(
            remote_hub, "POST", "/users/alice/server", json={"user_options": {"site": site}}
        )
        assert refused.status_code == 503, refused.text
        assert "is unavailable" in refused.json()["message"]
        assert time.monotonic() - started < 3
        assert not server_model(remote_hub, "alice")
        cluster_requests_refused_on(remote_hub, idp, slurm_sites, site, other)
    finally:
        link[1]()
    when_sites(remote_hub, {site: True, other: True}, f"{site} back")


@pytest.fixture(scope="module")
def launcher_rule(unix_users) -> Iterator[list[str]]:
    """The login account's sudo rule for the gateway's launcher (its default command: the
    login node mounts the hub's software here), beside the Slurm commands' rule of ``sshd``."""
    command = [sys.executable, "-I", "-S", launcher.__file__]
    rule = SUDOERS_DIR / f"continuum-test-gateway-{uuid.uuid4().hex[:12]}"
    tmp = rule.with_name(f".{rule.name}.tmp")  # sudo skips names with a dot
    tmp.write_text(
        f"{LOGIN_ACCOUNT} ALL=({','.join(unix_users)}) NOPASSWD:SETENV: {' '.join(command)}\n"
    )
    tmp.chmod(0o440)
    subprocess.run(["visudo", "-cqf", str(tmp)], check=True, capture_output=True, timeout=30)
    tmp.replace(rule)
    try:
        yield command
    finally:
        rule.unlink(missing_ok=True)


def gateway_token(hub: LocalHub) -> str:
    """A hub token of alice for the gateway, made with the admin token (this hub has no client
    at the provider: nobody signs in)."""
    body = {"scopes": [ACCESS_SCOPE], "expires_in": 3600, "note": "remote gateway tests"}
    response = api(hub, "POST", "/users/alice/tokens", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def staging_folder(user: str, cluster: str) -> Path:
    """Where the gateway stages ``cluster`` of ``user`` (``SiteClusterConfig`` default)."""
    return Path(os.path.expanduser(f"~{user}")) / ".dask-gateway" / cluster


@pytest.mark.parametrize("site", ["alpha", "beta"], ids=["ssh", "slurmrestd"])
@with_marks(GATEWAY_MARKS)
def test_dask_cluster_on_a_remote_site(remote_hub, idp, slurm_sites, sshd, launcher_rule, site):
    gateway = HubGateway(remote_hub, idp)
    gateway.wait_healthy()
    log_start = len(sshd.log())
    with gateway.client(gateway_token(remote_hub)) as client:
        cluster = client.new_cluster(site=site, worker_cores=1, worker_memory_gb=1)
        try:
            cluster.scale(1)
            with cluster.get_client(set_as_default=False) as dask:
                dask.wait_for_workers(1, timeout=90)
                assert dask.submit(sum, range(10)).result(timeout=60) == 45
            folder = staging_folder("alice", cluster.name)
            # the folder and its files are the user's and private, however they were made
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            assert folder.stat().st_uid == os.stat(os.path.expanduser("~alice")).st_uid
            for name in ("dask.pem", "dask.crt"):
                assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
            jobs = gateway_jobs(slurm_sites[site], "alice")
            assert jobs and {state for _, _, state in jobs} == {"RUNNING"}, jobs
        finally:
            cluster.shutdown()
    wait_gateway_jobs_gone(slurm_sites[site], "alice", timeout=30)
    wait_until(lambda: not folder.exists(), timeout=30, what=f"{folder} removed")
    if site == "alpha":  # the launcher ran on the login node, logged in as its login account
        logins = re.findall(r"Accepted publickey for (\S+)", sshd.log()[log_start:])
        assert logins and set(logins) == {LOGIN_ACCOUNT}, logins


def cluster_requests_refused_on(
    hub: LocalHub, idp: Any, slurm_sites: Any, site: str, other: str
) -> None:
    """With ``site``'s link cut: the gateway shows it unavailable and refuses a cluster there
    at once with the reason; a cluster on ``other`` starts (and is shut down)."""
    gateway = HubGateway(hub, idp)
    token = gateway_token(hub)

    def marked() -> bool:
        fields = gateway.api("GET", "/v1/options", token).json()["cluster_options"]
        return site in next(f for f in fields if f["field"] == "site")["label"]

    wait_until(marked, timeout=30, interval=0.5, what=f"{site} shown unavailable")
    with gateway.client(token) as client:
        started = time.monotonic()
        with pytest.raises(ValueError, match="is unavailable: its scheduler has not answered"):
            client.new_cluster(site=site)
        assert time.monotonic() - started < 3
        # submit/get/stop through the gateway's API: a GatewayCluster's scheduler connection
        # through the TLS proxy sometimes left Gateway.close() waiting forever on its loop
        name = client.submit(site=other, worker_cores=1, worker_memory_gb=1)
        try:
            wait_until(
                lambda: client.get_cluster(name).status.name == "RUNNING",
                timeout=120,
                interval=0.5,
                what=f"the cluster on {other} running",
            )
        finally:
            client.stop_cluster(name)
    wait_gateway_jobs_gone(slurm_sites[other], "alice", timeout=30)
