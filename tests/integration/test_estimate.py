"""Queue-wait estimates (``sbatch --test-only``) and "start where it runs soonest", for real."""

from __future__ import annotations

import pytest

from fixtures.hub import api, estimate, hub_login, server_model, stop_server, wait_for_server
from fixtures.slurm import occupied_node

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_estimate_for_the_signed_in_user(hub, idp):
    alice = hub_login(hub, idp, "alice")
    now = estimate(hub, alice, site="alpha", partition="interactive", cores=1, walltime="0:30")
    assert now.status_code == 200, now.text
    model = now.json()
    assert (model["site"], model["partition"]) == ("alpha", "interactive")
    assert model["start_time"] and 0 <= model["wait_seconds"] < 60
    too_big = estimate(hub, alice, site="alpha", cores=64)
    assert too_big.status_code == 400 and "cores must be between" in too_big.json()["message"]
    bob = hub_login(hub, idp, "bob")
    forbidden = estimate(hub, bob, site="beta")
    assert forbidden.status_code == 403
    gpu = estimate(hub, alice, site="soonest", gpus=1).json()
    assert (gpu["site"], gpu["partition"]) == ("beta", "gpu")
    assert [(c["site"], c["partition"]) for c in gpu["candidates"]] == [("beta", "gpu")]


def test_soonest_avoids_a_busy_site(hub, idp, slurm_sites):
    with occupied_node(slurm_sites["alpha"]):
        alice = hub_login(hub, idp, "alice")
        ranked = estimate(hub, alice, site="soonest", cores=1, walltime="0:30").json()
        assert (ranked["site"], ranked["partition"]) == ("beta", "gpu"), ranked
        alpha_waits = [c for c in ranked["candidates"] if c["site"] == "alpha"]
        assert alpha_waits and all(c["wait_seconds"] >= 60 for c in alpha_waits), ranked

        options = {"site": "soonest", "cores": 1, "walltime": "0:30"}
        response = api(hub, "POST", "/users/alice/server", json={"user_options": options})
        assert response.status_code in (201, 202), response.text
        model = wait_for_server(hub, "alice")
        assert model["user_options"] == options  # remembered as asked, for the next spawn
        job = api(hub, "GET", "/users/alice").json()["servers"][""]["state"]["request"]
        assert (job["site"], job["partition"]) == ("beta", "gpu")
        stop_server(hub, "alice")
        assert not server_model(hub, "alice")
