"""Attacks on the spawn path through the real hub, where the unit tests cannot reach
(issue 16 item 7): hostile spawn-form POSTs, and port reports made while a server is still
pending (batchspawner's own handler would let any of the user's credentials set any spawner
attribute at that moment).

Each refusal is checked where it matters: no server in the hub, no job at any site, and for
the pending server, that it still comes up on its own report and serves JupyterLab.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from fixtures.hub import api, hub_login, server_model, stop_server, wait_for_server
from fixtures.slurm import occupied_node, user_jobs

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.spawner]

PWNED = Path("/tmp/continuum-spawn-attack-pwned")


def xsrf_headers(hub, browser: requests.Session) -> dict[str, str]:
    """The header that lets ``browser``'s session POST to the hub (its ``_xsrf`` cookie)."""
    browser.get(f"{hub.url}/hub/spawn", timeout=30).raise_for_status()
    return {"X-XSRFToken": browser.cookies.get("_xsrf", path="/hub/") or ""}


def no_jobs_of(slurm_sites, user: str) -> bool:
    return not any(user_jobs(site, user) for site in slurm_sites.values())


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"target": "alpha/interactive\nbatch"}, "has no partition"),
        ({"target": "alpha\n/interactive"}, "unknown site"),
        (
            {"target": "alpha/interactive", "walltime": f"1:00$(touch {PWNED})"},
            "walltime must look like",
        ),
        ({"target": "alpha/interactive", "exec_prefix": f"touch {PWNED};"}, "unknown option"),
        ({"target": "alpha/interactive", "cmd": "/bin/sh"}, "unknown option"),
    ],
    ids=["newline-in-partition", "newline-in-site", "shell-in-walltime", "exec-prefix", "cmd"],
)
def test_spawn_form_post_injection_is_refused(hub, idp, slurm_sites, fields, message):
    bob = hub_login(hub, idp, "bob")
    response = bob.post(
        f"{hub.url}/hub/spawn",
        data=fields,
        headers=xsrf_headers(hub, bob),
        timeout=60,
        allow_redirects=False,
    )
    # the hub shows the form again with the refusal, and starts nothing
    assert response.status_code == 400, response.text[:500]
    assert message in response.text and 'name="target"' in response.text
    assert not server_model(hub, "bob")
    assert no_jobs_of(slurm_sites, "bob")
    assert not PWNED.exists()


def test_port_report_while_pending_takes_only_the_servers_own_token(hub, idp, slurm_sites):
    alpha = slurm_sites["alpha"]
    bob = hub_login(hub, idp, "bob")
    url = f"{hub.url}/hub/api/batchspawner"
    try:
        with occupied_node(alpha, user="alice"):  # bob's server job queues behind it
            options = {"site": "alpha", "partition": "interactive", "cores": 4}
            response = api(hub, "POST", "/users/bob/server", json={"user_options": options})
            assert response.status_code == 202, response.text
            deadline = time.monotonic() + 60
            while not [j for j in user_jobs(alpha, "bob") if j[1] == "PENDING"]:
                assert time.monotonic() < deadline, "bob's server job never queued"
                time.sleep(0.5)
            assert server_model(hub, "bob")["pending"] == "spawn"
            # bob's own browser session is bob, but it is not his server's token
            session = bob.post(url, json={"port": 22}, headers=xsrf_headers(hub, bob), timeout=30)
            assert session.status_code == 403, session.text
            # a hostile body is refused before any token is looked at
            for body in ({"port": 22, "exec_prefix": f"touch {PWNED};"}, {"cmd": ["/bin/sh"]}):
                hostile = bob.post(url, json=body, headers=xsrf_headers(hub, bob), timeout=30)
                assert hostile.status_code in (400, 403), (body, hostile.text)
            # the hub's own admin service has no server to report for
            admin = requests.post(
                url,
                json={"port": 22},
                headers={"Authorization": f"token {hub.api_token}"},
                timeout=30,
            )
            assert admin.status_code in (403, 404), admin.text
            model = server_model(hub, "bob")
            assert model["pending"] == "spawn" and not model.get("ready")
        # the node is free: the job runs and its own report makes the server ready
        wait_for_server(hub, "bob", timeout=120)
        lab = bob.get(f"{hub.url}/user/bob/lab", timeout=60)
        assert lab.status_code == 200 and "jupyter-config-data" in lab.text, lab.text[:300]
        assert not PWNED.exists()
    finally:
        stop_server(hub, "bob")
    assert not user_jobs(alpha, "bob")
