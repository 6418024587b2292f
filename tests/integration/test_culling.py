"""Idle servers are culled by the managed jupyterhub-idle-culler, and leave no Slurm job.

Runs on a hub of its own with a 10-second idle timeout, so culling cannot touch the servers of
the other tests.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from fixtures.hub import admin_hub, api, server_model, wait_for_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def culling_hub(federation_root, repo_root, idp, slurm_sites, unix_users):
    hub = admin_hub(
        federation_root / "culling-hub",
        repo_root,
        idp,
        slurm_sites,
        extra_config={
            "CullerService": {"timeout": 10, "cull_every": 2},
            "Spawner": {"poll_interval": 2},
        },
    )
    with hub:
        yield hub


def test_idle_server_is_culled_and_its_job_cancelled(culling_hub, slurm_sites):
    hub, alpha = culling_hub, slurm_sites["alpha"]
    # a user known to this hub through the admin API (no sign-in needed), in a VO of site alpha
    assert api(hub, "POST", "/users/bob").status_code in (201, 409)
    api(hub, "POST", "/groups/vo.hep.example")
    assert api(hub, "POST", "/groups/vo.hep.example/users", json={"users": ["bob"]}).ok
    response = api(hub, "POST", "/users/bob/server", json={"user_options": {"site": "alpha"}})
    assert response.status_code in (201, 202), response.text
    job_id = wait_for_server(hub, "bob")["state"]["job_id"]
    deadline = time.monotonic() + 90
    while server_model(hub, "bob"):
        assert time.monotonic() < deadline, f"idle server not culled; hub log:\n{hub.log()}"
        time.sleep(1)
    squeue = subprocess.run(
        ["squeue", "--noheader", f"--jobs={job_id}", "--format=%T"],
        env={**os.environ, **alpha.env()},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert squeue.stdout.strip() in ("", "COMPLETING"), squeue.stdout
    log = (hub.state_dir / "jupyterhub.log").read_text()
    # the culler stopped it (its own line, not its start-up), and the stop cancelled the job
    assert "Culling server bob " in log, log[-3000:]
    assert f"Cancelling job {job_id} on alpha for bob" in log
