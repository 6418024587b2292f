"""Federated identities run as mapped POSIX accounts on the real Slurm sites.

A hub of its own whose registry maps accounts through map files: at ``alpha`` the hub user
``bob`` is the Unix account ``carol`` (and ``alice`` is ``alice``); at ``beta`` only ``dave`` has
an account.  bob's server really runs as carol (squeue, the process owner, the job's
environment), and alice, whose groups allow beta, is refused there with a clear 403 before any
job is submitted.
"""

from __future__ import annotations

import pwd

import pytest
import requests
import yaml

from fixtures.hub import (
    ADMIN_SCOPES,
    admin_hub,
    api,
    server_environ,
    server_model,
    stop_server,
    wait_for_server,
)
from fixtures.slurm import squeue, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NO_BETA = "You have no account at Beta GPU centre (beta)"


@pytest.fixture(scope="module")
def mapped_hub(federation_root, repo_root, idp, slurm_sites, unix_users):
    state = federation_root / "account-hub"
    state.mkdir()
    (state / "alpha-accounts.yaml").write_text("bob: carol\nalice: alice\n")
    (state / "beta-accounts.yaml").write_text("dave: dave\n")
    registry = yaml.safe_load((repo_root / "hub-config" / "sites.demo.yaml").read_text())
    for entry in registry["sites"]:
        entry["user_accounts"] = {
            "policy": "map",
            "file": str(state / f"{entry['name']}-accounts.yaml"),
        }
    registry_path = state / "sites.yaml"
    registry_path.write_text(yaml.safe_dump(registry))
    hub = admin_hub(
        state / "hub",
        repo_root,
        idp,
        slurm_sites,
        registry_path=registry_path,
        extra_config={
            "Spawner": {"poll_interval": 2},
            "SiteSpawner": {"status_interval": 1},
            # the admin service may also make tokens for users (to ask as alice)
            "JupyterHub": {
                "load_roles": [
                    {
                        "name": "test-admin",
                        "scopes": [*ADMIN_SCOPES, "tokens"],
                        "services": ["test-admin"],
                    }
                ]
            },
        },
    )
    with hub:
        for user, groups in (
            ("bob", ["vo.hep.example"]),
            ("alice", ["vo.hep.example", "vo.radio.example"]),
        ):
            assert api(hub, "POST", f"/users/{user}").status_code in (201, 409)
            for group in groups:
                api(hub, "POST", f"/groups/{group}")
                assert api(hub, "POST", f"/groups/{group}/users", json={"users": [user]}).ok
        yield hub


def jobs(site) -> list[list[str]]:
    """``id|user|state|name`` of the site's jobs."""
    return squeue(site, "--format=%i|%u|%T|%j")


def test_job_runs_as_the_mapped_account(mapped_hub, slurm_sites):
    hub, alpha = mapped_hub, slurm_sites["alpha"]
    options = {"site": "alpha", "partition": "interactive", "cores": 1, "memory_gb": 1}
    response = api(hub, "POST", "/users/bob/server", json={"user_options": options})
    assert response.status_code in (201, 202), f"{response.text}\n{hub.log()}"
    model = wait_for_server(hub, "bob")
    job_id = model["state"]["job_id"]
    assert model["state"]["account"] == "carol"
    mine = [j for j in jobs(alpha) if j[0] == job_id]
    assert mine and mine[0][1:3] == ["carol", "RUNNING"], mine
    assert not [j for j in jobs(alpha) if j[1] == "bob"]

    environ = server_environ(hub, "carol", having="JUPYTERHUB_USER")
    assert environ["JUPYTERHUB_USER"] == "bob"  # the hub identity
    assert (environ["USER"], environ["HOME"]) == ("carol", pwd.getpwnam("carol").pw_dir)
    assert "Submitting bob on site alpha as carol" in hub.log(400)

    # status and cancel run as carol too: stopping ends carol's job
    stop_server(hub, "bob")
    wait_until(lambda: not [j for j in jobs(alpha) if j[0] == job_id], 60, 0.5, "job cancelled")


def test_site_without_account_is_refused_before_any_job(mapped_hub, slurm_sites):
    hub, beta = mapped_hub, slurm_sites["beta"]
    before = {j[0] for j in jobs(beta)}
    response = api(hub, "POST", "/users/alice/server", json={"user_options": {"site": "beta"}})
    assert response.status_code == 403, response.text
    assert response.json()["message"] == NO_BETA
    assert not server_model(hub, "alice")
    assert {j[0] for j in jobs(beta)} == before  # nothing was submitted

    # the same answer from the estimate the form asks for, with alice's own token
    token = api(hub, "POST", "/users/alice/tokens", json={"expires_in": 600}).json()["token"]
    estimate = requests.get(
        f"{hub.url}/hub/api/continuum/estimate",
        params={"site": "beta"},
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert estimate.status_code == 403 and estimate.json()["message"] == NO_BETA
    # "soonest" only considers alpha, where alice has an account
    soonest = requests.get(
        f"{hub.url}/hub/api/continuum/estimate",
        params={"site": "soonest"},
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert soonest.status_code == 200, soonest.text
    assert {c["site"] for c in soonest.json()["candidates"]} == {"alpha"}
