"""The walking skeleton end to end: sign-in, groups, spawn on each site, stop, refusals.

Everything is real: the OpenID provider, the two Slurm clusters, the hub and its proxy, and the
JupyterLab server running as a Slurm job under the user's own Unix account.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from fixtures.hub import api, hub_login, server_environ, server_model, stop_server, wait_for_server
from fixtures.slurm import squeue

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def site_jobs(site) -> list[list[str]]:
    """Jobs of a site as lists of ``id|user|state|partition|name`` fields."""
    return squeue(site, "--format=%i|%u|%T|%P|%j")


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture(scope="module")
def alice(hub, idp):
    return hub_login(hub, idp, "alice")


def test_login_maps_entitlements_to_groups(hub, idp, alice):
    user = api(hub, "GET", "/users/alice").json()
    assert sorted(user["groups"]) == ["vo.hep.example", "vo.radio.example"]
    assert user["admin"] is False
    hub_login(hub, idp, "dave")
    dave = api(hub, "GET", "/users/dave").json()
    assert sorted(dave["groups"]) == ["continuum-admins", "vo.radio.example"]
    assert dave["admin"] is True


def test_user_without_vo_is_refused(hub, idp):
    with pytest.raises(AssertionError, match="403"):
        hub_login(hub, idp, "carol")
    assert api(hub, "GET", "/users/carol").status_code == 404


def test_spawn_form_offers_only_allowed_sites(hub, idp, alice):
    page = alice.get(f"{hub.url}/hub/spawn", timeout=30)
    assert page.status_code == 200
    assert 'value="alpha/interactive"' in page.text and 'value="beta/gpu"' in page.text
    bob = hub_login(hub, idp, "bob")
    page = bob.get(f"{hub.url}/hub/spawn", timeout=30)
    assert 'value="alpha/interactive"' in page.text and "beta/gpu" not in page.text


@pytest.mark.parametrize(
    "options",
    [
        {"site": "alpha", "partition": "interactive", "cores": 1, "memory_gb": 1},
        {"site": "beta", "partition": "gpu", "cores": 2, "memory_gb": 2, "gpus": 1},
    ],
    ids=["alpha-interactive", "beta-gpu"],
)
def test_spawn_runs_as_slurm_job_of_the_user_and_stop_cancels_it(hub, slurm_sites, alice, options):
    site = slurm_sites[options["site"]]
    response = api(hub, "POST", "/users/alice/server", json={"user_options": options})
    assert response.status_code in (201, 202), response.text
    model = wait_for_server(hub, "alice")
    jobs = [j for j in site_jobs(site) if j[1] == "alice"]
    assert len(jobs) == 1, jobs
    job_id, user, state, partition, name = jobs[0]
    assert (user, state, partition, name) == (
        "alice",
        "RUNNING",
        options["partition"],
        "jupyterlab",
    )
    other = "beta" if options["site"] == "alpha" else "alpha"
    assert not [j for j in site_jobs(slurm_sites[other]) if j[1] == "alice"]
    assert model["user_options"] == options

    # the server's own token reads its job's facts from the hub; they match the scheduler's
    info = requests.get(
        f"{hub.url}/hub/api/continuum/job",
        headers={"Authorization": f"token {job_token(hub, 'alice')}"},
        timeout=30,
    )
    assert info.status_code == 200, info.text
    job = info.json()
    assert (job["job_id"], job["site"], job["partition"]) == (
        job_id,
        options["site"],
        options["partition"],
    )
    assert job["state"] == "running" and job["node"]
    assert job["cores"] == options["cores"] and job["walltime_minutes"] == 60
    assert job["environment"] == "Python 3.11 · JupyterLab"
    assert 0 < job["remaining_seconds"] <= 3600
    start, end = (datetime.fromisoformat(job[k]) for k in ("start_time", "end_time"))
    assert end - start == timedelta(minutes=60)
    admin = requests.get(
        f"{hub.url}/hub/api/continuum/job",
        headers={"Authorization": f"token {hub.api_token}"},
        timeout=30,
    )
    assert admin.status_code == 403

    # JupyterLab answers through the proxy, to alice's browser session (OAuth with the hub)
    lab = alice.get(f"{hub.url}/user/alice/lab", timeout=60)
    assert lab.status_code == 200 and "jupyter-config-data" in lab.text, lab.text[:300]

    stop_server(hub, "alice")
    wait_until(lambda: not [j for j in site_jobs(site) if j[0] == job_id], timeout=60)


@pytest.mark.parametrize(
    "options,status,message",
    [
        ({"site": "beta"}, 403, "not allowed to use site"),
        ({"site": "alpha", "cores": 64}, 400, "cores must be between 1 and 4"),
        ({"site": "alpha", "exec_prefix": "bash -c id"}, 400, "unknown option"),
        ({"site": "alpha", "walltime": "1:00; reboot"}, 400, "walltime must look like"),
    ],
    ids=["forbidden-site", "too-many-cores", "unknown-field", "walltime-injection"],
)
def test_rest_spawn_refusals(hub, idp, slurm_sites, options, status, message):
    hub_login(hub, idp, "bob")
    response = api(hub, "POST", "/users/bob/server", json={"user_options": options})
    assert response.status_code == status, response.text
    assert message in response.json()["message"]
    assert not server_model(hub, "bob")
    assert not [j for s in slurm_sites.values() for j in site_jobs(s) if j[1] == "bob"]


def job_token(hub, username: str) -> str:
    """The API token in the environment of the user's server of this hub (read as root)."""
    return server_environ(hub, username, having="JUPYTERHUB_API_TOKEN")["JUPYTERHUB_API_TOKEN"]


def test_port_report_refuses_other_attributes(hub, idp, slurm_sites):
    bob = hub_login(hub, idp, "bob")
    response = api(hub, "POST", "/users/bob/server", json={"user_options": {"site": "alpha"}})
    assert response.status_code in (201, 202), response.text
    wait_for_server(hub, "bob")
    token = job_token(hub, "bob")
    url = f"{hub.url}/hub/api/batchspawner"
    headers = {"Authorization": f"token {token}"}
    for body in (
        {"port": 1234, "exec_prefix": "bash -c 'touch /tmp/pwned'"},
        {"cmd": ["/bin/sh", "-c", "id"]},
        {"exec_prefix": "true"},
        {"port": "22"},
    ):
        refused = requests.post(url, json=body, headers=headers, timeout=30)
        assert refused.status_code == 400, (body, refused.text)
    # the right shape, but the server is already running: its port cannot be moved
    moved = requests.post(url, json={"port": 1234}, headers=headers, timeout=30)
    assert moved.status_code == 409
    # another identity's token is not this server's token
    admin = requests.post(
        url, json={"port": 1234}, headers={"Authorization": f"token {hub.api_token}"}, timeout=30
    )
    assert admin.status_code in (403, 404)
    # nothing changed: the server still answers where it did
    assert bob.get(f"{hub.url}/user/bob/lab", timeout=60).status_code == 200
    assert server_model(hub, "bob")["ready"]
    assert not Path("/tmp/pwned").exists()
    stop_server(hub, "bob")
