"""The hub-host playbook (``deploy/``) against this machine, into a throwaway root.

The playbook runs twice with a local connection; every system path it writes lies under a
temporary folder (``continuum_root``), packages, the venv, the proxy's npm install and the
service manager are switched off by variables (this machine's test environment stays as it is;
no systemd runs here).  The second run must change nothing.

The deployment is a real hub of this machine: every database on the session's PostgreSQL (the
playbook makes the hub's role and database there), the registry naming the session's Slurm
sites, the session's OpenID provider as the primary provider (its client ``continuum-deploy``
redirects to the deployed hub's TLS port).  The proxy's and the hub's units are started as the
units say (user, environment file, working directory, log file) with the playbook's sudo rule
installed into ``/etc/sudoers.d`` meanwhile; through the proxy's TLS a user signs in at the
provider's login form, spawns a server on ``alpha`` through the REST API, reaches it, stops it;
the hub's records are checked in PostgreSQL, and ``jupyterhub upgrade-db`` runs as the upgrade
path says.

The hub's account (``continuum-deploytest``) is a real system user the playbook creates; the
test removes it again, its sudo rule, and its database and role.
"""

from __future__ import annotations

import json
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest

from continuum_federation.hub import (
    DEMO_NAMESPACE,
    DEMO_VOS,
    LINK_CLAIM,
    PRIMARY_PROVIDER,
    SCOPE,
    lean_server_config,
)
from continuum_federation.idp import ADMIN_GROUP, ENTITLEMENT_AUTHORITY, OpenIDProvider
from continuum_federation.postgres import PostgresCluster
from continuum_federation.process import free_port
from continuum_federation.slurm import LocalSlurmCluster
from fixtures.deployed_hub import (
    DeployedHub,
    installed_sudoers,
    living_processes,
    recap,
    run_playbook,
    start_units,
    wait_until,
)
from fixtures.idp import DEPLOY_CLIENT_ID
from fixtures.slurm import job_state
from fixtures.unit_exec import parse_unit, unit_environment

# slow: two playbook runs take about 40 s on a quiet 2-core machine, over 2 min on a busy one
pytestmark = [pytest.mark.integration, pytest.mark.deploy, pytest.mark.slow, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
HUB_USER = "continuum-deploytest"
PARTNER_SECRET = "partner-client-secret-91c2"
UNITS = ("continuum-proxy.service", "continuum-hub.service")
#: the deployed hub's database in the session's PostgreSQL
DATABASE = "continuum_deploytest"
USER = "alice"
OPTIONS = {"site": "alpha", "partition": "interactive", "cores": 1, "memory_gb": 1}
#: tables of every store, all in the hub's PostgreSQL database: JupyterHub's, the identities,
#: the Dask Gateway's, the workflow runs, the catalogue's requests and its built-in source's
#: records (the default source ``demo``), the events, the job ledger
STORE_TABLES = {
    "hub": {"users", "spawners", "servers"},
    "identities": {"accounts", "identities"},
    "gateway": {"clusters", "workers"},
    "workflows": {"runs"},
    "catalogue": {"requests", "catalogue_demo_entries", "catalogue_demo_fts"},
    "events": {"continuum_events"},
    "ledger": {"continuum_usage_jobs"},
}


def remove_hub_user() -> None:
    """Remove the test's hub account and group (the playbook made them)."""
    subprocess.run(["userdel", HUB_USER], capture_output=True, check=False)
    subprocess.run(["groupdel", HUB_USER], capture_output=True, check=False)


def drop_database(cluster: PostgresCluster) -> None:
    """Drop the deployed hub's database and role (the playbook made them) if they exist."""
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'DROP ROLE IF EXISTS "{HUB_USER}"')


def deployment_variables(
    base: Path,
    idp: OpenIDProvider,
    sites: Mapping[str, LocalSlurmCluster],
    cluster: PostgresCluster,
    public_port: int,
    accounts: list[str],
) -> dict[str, Any]:
    """The playbook's variables: a hub of this machine in the throwaway root ``base/root``."""
    site = base / "site"
    # the certificate files a site provides (a self-signed one for 127.0.0.1)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(site / "hub.key"), "-out", str(site / "hub.crt")],
        capture_output=True, check=True,
    )  # fmt: skip
    client = next(c for c in idp.clients if c["client_id"] == DEPLOY_CLIENT_ID)
    return {
        "continuum_root": str(base / "root"),
        "continuum_install_packages": False,
        "continuum_install_venv": False,
        "continuum_install_proxy": False,
        "continuum_manage_services": False,
        "continuum_hub_user": HUB_USER,
        "continuum_venv": sys.prefix,
        "continuum_source_dir": str(REPO),
        "continuum_proxy_command": str(REPO / "node_modules" / ".bin" / "configurable-http-proxy"),
        "continuum_public_url": f"https://127.0.0.1:{public_port}",
        "continuum_proxy_ip": "127.0.0.1",
        "continuum_proxy_port": public_port,
        "continuum_proxy_api_port": free_port(),
        "continuum_hub_port": free_port(),
        "continuum_gateway_ports": {
            "port": free_port(),
            "tcp_port": free_port(),
            "api_port": free_port(),
        },
        "continuum_tls_cert": str(site / "hub.crt"),
        "continuum_tls_key": str(site / "hub.key"),
        # the session's provider; a second one that is never asked (its secret's file)
        "continuum_oidc_issuer": idp.issuer,
        "continuum_oidc_client_id": DEPLOY_CLIENT_ID,
        "continuum_oidc_client_secret": client["client_secret"],
        "continuum_oidc_provider_name": PRIMARY_PROVIDER,
        "continuum_providers": {"partner": {"issuer": "https://partner.invalid", "client_id": "h"}},
        "continuum_provider_secrets": {"partner": PARTNER_SECRET},
        "continuum_allowed_groups": [*DEMO_VOS, ADMIN_GROUP],
        "continuum_admin_groups": [ADMIN_GROUP],
        "continuum_site_registry": (REPO / "hub-config" / "sites.demo.yaml").read_text(),
        "continuum_slurm_confs": {name: str(s.conf_path) for name, s in sites.items()},
        # the session's PostgreSQL (trust on 127.0.0.1) instead of the local socket's peer
        "continuum_postgresql": True,
        "continuum_postgresql_host": "127.0.0.1",
        "continuum_postgresql_port": cluster.port,
        "continuum_postgresql_db": DATABASE,
        "continuum_sudo_runas": ", ".join(accounts),
        "continuum_extra_config": {
            # what the demo provider's entitlements mean (as the session hub reads them)
            "FederatedAuthenticator": {
                "scope": SCOPE,
                "trusted_namespaces": [DEMO_NAMESPACE],
                "trusted_authorities": [ENTITLEMENT_AUTHORITY],
                "link_claim": LINK_CLAIM,
            },
            # a lean server (no JupyterLab to load) polled every 2 s: the test's time
            "Spawner": {**lean_server_config()["Spawner"], "poll_interval": 2},
        },
    }


@pytest.fixture(scope="module")
def deployment(
    federation_root: Path,
    idp: OpenIDProvider,
    slurm_sites: Mapping[str, LocalSlurmCluster],
    unix_users: list[str],
    postgres_cluster: PostgresCluster,
    deploy_hub_port: int,
) -> Iterator[dict[str, Any]]:
    """The playbook run twice into a throwaway root: the variables and both runs' outputs."""
    # under the session's world-traversable scratch folder: the hub's user walks into it
    base = federation_root / "deploy"
    base.mkdir(mode=0o755)
    (base / "site").mkdir()
    variables = deployment_variables(
        base, idp, slurm_sites, postgres_cluster, deploy_hub_port, unix_users
    )
    vars_file = base / "site" / "vars.json"
    vars_file.write_text(json.dumps(variables))
    vars_file.chmod(0o600)
    remove_hub_user()
    drop_database(postgres_cluster)
    try:
        first = run_playbook(REPO, vars_file, base / "ansible")
        second = run_playbook(REPO, vars_file, base / "ansible")
        yield {"vars": variables, "root": base / "root", "runs": (first, second)}
    finally:
        drop_database(postgres_cluster)
        remove_hub_user()


def test_second_run_changes_nothing(deployment: dict[str, Any]) -> None:
    (rc1, out1), (rc2, out2) = deployment["runs"]
    assert rc1 == 0, out1[-4000:]
    changed, failed = recap(out1)
    assert changed > 0 and failed == 0
    assert rc2 == 0, out2[-4000:]
    assert recap(out2) == (0, 0), out2[-4000:]


def test_secrets_are_private_and_never_printed(deployment: dict[str, Any]) -> None:
    etc = deployment["root"] / "etc" / "continuum-hub"
    secret_files = [
        *(etc / "secrets").iterdir(),
        etc / "hub.env",
        etc / "proxy.env",
        etc / "tls" / "key.pem",
        etc / "continuum_hub_config.json",
    ]
    assert {p.name for p in (etc / "secrets").iterdir()} == {
        "cookie_secret", "crypt_key", "proxy_token", "oidc-partner",
    }  # fmt: skip
    primary_secret = deployment["vars"]["continuum_oidc_client_secret"]
    values = {primary_secret, PARTNER_SECRET}
    hub_user = pwd.getpwnam(HUB_USER)
    for path in secret_files:
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600, path
        assert (info.st_uid, info.st_gid) == (hub_user.pw_uid, hub_user.pw_gid), path
        if path.parent.name == "secrets":
            values.add(path.read_text().strip())
    assert (etc / "secrets" / "oidc-partner").read_text().strip() == PARTNER_SECRET
    for _, output in deployment["runs"]:
        for value in values:
            assert value not in output
    layer = json.loads((etc / "continuum_hub_config.json").read_text())
    assert layer["ConfigurableHTTPProxy"]["should_start"] is False
    partner = layer["FederatedAuthenticator"]["providers"]["partner"]
    assert partner["client_secret_file"] == str(etc / "secrets" / "oidc-partner")
    assert primary_secret not in json.dumps(layer)


def test_units_verify(deployment: dict[str, Any]) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit_dir = deployment["root"] / "etc" / "systemd" / "system"
    result = subprocess.run(
        [analyze, "verify", *(str(unit_dir / unit) for unit in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    hub = parse_unit(unit_dir / "continuum-hub.service")
    assert hub.get("Service", "Restart") == "on-failure"
    # the spawner's `sudo -n -u ACCOUNT` needs set-uid: the hub unit must not forbid it
    assert hub.get("Service", "NoNewPrivileges") is None
    proxy = parse_unit(unit_dir / "continuum-proxy.service")
    assert proxy.get("Service", "NoNewPrivileges") == "yes"


@pytest.fixture(scope="module")
def deployed(deployment: dict[str, Any]) -> Iterator[DeployedHub]:
    """The deployed units started as they say, with the playbook's sudo rule in force; both
    stopped (and the rule removed) after the module."""
    root = deployment["root"]
    with installed_sudoers(root / "etc" / "sudoers.d" / "continuum-hub", HUB_USER):
        hub = DeployedHub(deployment["vars"], root, root / "etc" / "systemd" / "system", UNITS)
        try:
            start_units(hub)
            yield hub
        finally:
            hub.stop()


def test_units_run_as_they_say(deployed: DeployedHub) -> None:
    """The units' processes run as the hub's user, the hub in its working directory, and the
    hub answers ``/hub/health`` through the proxy's TLS with the site's certificate."""
    assert deployed.health() == 200
    uid = pwd.getpwnam(HUB_USER).pw_uid
    for process in deployed.processes:
        assert Path(f"/proc/{process.pid}").stat().st_uid == uid
    hub = deployed.processes[-1]
    assert Path(f"/proc/{hub.pid}/cwd").readlink() == deployed.state_dir


def test_sign_in_and_spawn_on_the_deployed_hub(
    deployed: DeployedHub,
    idp: OpenIDProvider,
    slurm_sites: Mapping[str, LocalSlurmCluster],
    postgres_cluster: PostgresCluster,
) -> None:
    """Sign in at the provider's form, spawn on alpha with the REST API, reach the server
    through the proxy, find the hub's records in PostgreSQL, stop: no job is left."""
    browser = deployed.sign_in(idp, USER)
    response = deployed.api(
        browser, "POST", f"/users/{USER}/server", json={"user_options": OPTIONS}
    )
    assert response.status_code in (201, 202), response.text
    model = deployed.wait_ready(browser, USER, timeout=120)
    assert model["user_options"] == OPTIONS
    # the single-user server answers through the proxy's TLS (its API's JSON, not a hub page)
    answer = browser.get(f"{deployed.url}/user/{USER}/api", timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    assert "version" in answer.json(), answer.text[:300]
    with psycopg.connect(postgres_cluster.dsn(DATABASE)) as db:
        # the hub ran on PostgreSQL: the user, its running server, its identity link, its job
        servers = db.execute(
            "SELECT v.port FROM users u JOIN spawners s ON s.user_id = u.id"
            " JOIN servers v ON v.id = s.server_id WHERE u.name = %s",
            (USER,),
        ).fetchall()
        links = db.execute(
            "SELECT provider FROM identities WHERE username = %s AND issuer = %s",
            (USER, idp.issuer),
        ).fetchall()
        jobs = db.execute(
            'SELECT job_id FROM continuum_usage_jobs WHERE "user" = %s AND site = %s',
            (USER, OPTIONS["site"]),
        ).fetchall()
    assert len(servers) == 1 and servers[0][0], servers
    assert links == [(PRIMARY_PROVIDER,)]
    assert len(jobs) == 1, jobs
    job_id = jobs[0][0]
    site = slurm_sites[OPTIONS["site"]]
    assert job_state(site, job_id) == "RUNNING"
    response = deployed.api(browser, "DELETE", f"/users/{USER}/server")
    assert response.status_code in (202, 204), response.text
    wait_until(lambda: not deployed.server_model(browser, USER), 60, 0.5, "server stopped")
    wait_until(lambda: job_state(site, job_id) == "", 60, 0.5, f"job {job_id} gone")


def store_tables(cluster: PostgresCluster) -> set[str]:
    """The tables of the deployed hub's PostgreSQL database."""
    with psycopg.connect(cluster.dsn(DATABASE)) as db:
        rows = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {name for (name,) in rows}


def test_every_store_is_on_postgresql(
    deployed: DeployedHub, postgres_cluster: PostgresCluster
) -> None:
    """Each store's tables are in the hub's PostgreSQL database; no store made a SQLite file.

    The managed services make theirs when they start, which the hub does after it answers."""
    wanted = set().union(*STORE_TABLES.values())
    try:
        wait_until(lambda: wanted <= store_tables(postgres_cluster), 60, 0.5, "stores' tables")
    except AssertionError:
        tables = store_tables(postgres_cluster)
        missing = {store: want - tables for store, want in STORE_TABLES.items() if want - tables}
        raise AssertionError(f"{missing} not in {sorted(tables)}:\n{deployed.log()}") from None
    # no SQLite file at all: the built-in catalogue source's records are in PostgreSQL too
    state = deployed.state_dir
    files = sorted(str(path.relative_to(state)) for path in state.rglob("*.sqlite"))
    assert files == [], files


def test_stop_and_upgrade_db(deployed: DeployedHub) -> None:
    """Stopped as systemd stops the units, nothing of the hub's user is left; then
    ``jupyterhub upgrade-db`` as the upgrade path says (README): as the hub's user, in its
    working directory, with the deployment's database URL."""
    deployed.stop()
    uid = pwd.getpwnam(HUB_USER).pw_uid
    # killed ones may show as zombies until init reaps them: not counted
    wait_until(lambda: not living_processes(uid), 10, 0.2, "no process of the hub's user")
    layer = json.loads((deployed.etc_dir / "continuum_hub_config.json").read_text())
    db_url = layer["JupyterHub"]["db_url"]
    assert db_url.startswith("postgresql+psycopg://")
    hub_unit = parse_unit(deployed.unit_dir / "continuum-hub.service")
    result = subprocess.run(
        [str(deployed.venv / "bin" / "jupyterhub"), "upgrade-db", f"--JupyterHub.db_url={db_url}"],
        env=unit_environment(hub_unit),
        cwd=deployed.state_dir,
        user=HUB_USER,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
