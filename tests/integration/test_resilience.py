"""Servers survive what batch sites and hubs go through: restarts, outages, jobs lost outside.

The session's hub polls every 2 s here (``fixtures.hub``), so the hub notices within seconds.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from fixtures.hub import api, hub_login, server_model, stop_server, wait_for_server
from fixtures.slurm import user_jobs

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def spawn(hub, username: str, site: str) -> str:
    response = api(hub, "POST", f"/users/{username}/server", json={"user_options": {"site": site}})
    assert response.status_code in (201, 202), response.text
    wait_for_server(hub, username)
    return server_model(hub, username)["state"]["job_id"]


def hub_log_since(hub, mark: int) -> str:
    return (hub.state_dir / "jupyterhub.log").read_text(errors="replace")[mark:]


def log_mark(hub) -> int:
    return len((hub.state_dir / "jupyterhub.log").read_text(errors="replace"))


def test_hub_restart_resumes_running_servers(hub, idp, slurm_sites):
    hub_login(hub, idp, "alice")
    job_id = spawn(hub, "alice", "alpha")
    hub.stop()
    hub.start()
    model = wait_for_server(hub, "alice")
    assert model["state"]["job_id"] == job_id
    assert (job_id, "RUNNING") in user_jobs(slurm_sites["alpha"], "alice")
    # the proxy was restarted with the hub; the route to the running server is back
    lab = hub_login(hub, idp, "alice").get(f"{hub.url}/user/alice/lab", timeout=60)
    assert lab.status_code == 200
    stop_server(hub, "alice")


def test_controller_outage_keeps_servers_and_recovers(hub, idp, slurm_sites):
    alpha = slurm_sites["alpha"]
    hub_login(hub, idp, "bob")
    job_id = spawn(hub, "bob", "alpha")
    mark = log_mark(hub)
    alpha.stop_controller()
    try:
        deadline = time.monotonic() + 60
        while "is not answering" not in hub_log_since(hub, mark):
            assert time.monotonic() < deadline, "the hub never noticed the outage"
            time.sleep(1)
        assert server_model(hub, "bob").get("ready"), "server dropped during the outage"
    finally:
        alpha.start_controller()
    assert (job_id, "RUNNING") in user_jobs(alpha, "bob")
    time.sleep(5)  # a few polls after the controller is back
    assert server_model(hub, "bob")["ready"]
    assert "Traceback" not in hub_log_since(hub, mark)
    stop_server(hub, "bob")
    assert not user_jobs(alpha, "bob")


def test_job_cancelled_outside_the_hub_stops_the_server(hub, idp, slurm_sites):
    beta = slurm_sites["beta"]
    hub_login(hub, idp, "dave")
    job_id = spawn(hub, "dave", "beta")
    mark = log_mark(hub)
    subprocess.run(["scancel", job_id], env={**os.environ, **beta.env()}, check=True, timeout=30)
    deadline = time.monotonic() + 60
    while server_model(hub, "dave"):
        assert time.monotonic() < deadline, "the hub still lists a server whose job is gone"
        time.sleep(0.5)
    assert f"Job {job_id} of dave on site beta is gone" in hub_log_since(hub, mark)
    assert not user_jobs(beta, "dave")


def test_requeued_job_is_followed(hub, idp, slurm_sites):
    """Slurm requeues the job (node failure, preemption): the server comes back at its new port.

    Slurm holds a requeued job for 120 s before it may run again, so this test takes minutes.
    """
    alpha = slurm_sites["alpha"]
    browser = hub_login(hub, idp, "alice")
    job_id = spawn(hub, "alice", "alpha")
    old_url = server_model(hub, "alice")["url"]
    assert browser.get(f"{hub.url}/user/alice/lab", timeout=60).status_code == 200
    mark = log_mark(hub)
    subprocess.run(
        ["scontrol", "requeue", job_id], env={**os.environ, **alpha.env()}, check=True, timeout=30
    )
    deadline = time.monotonic() + 60
    while "was requeued by the scheduler" not in hub_log_since(hub, mark):
        assert time.monotonic() < deadline, "the hub did not notice the requeue"
        time.sleep(1)
    assert server_model(hub, "alice"), "the server was dropped instead of followed"
    deadline = time.monotonic() + 240
    while "after a requeue" not in hub_log_since(hub, mark):
        assert time.monotonic() < deadline, f"the rerun never reported; log:\n{hub.log()}"
        time.sleep(2)
    assert (job_id, "RUNNING") in user_jobs(alpha, "alice")
    # the route moves when the rerun reports its port, a moment before JupyterLab listens
    deadline = time.monotonic() + 60
    while (status := browser.get(f"{hub.url}/user/alice/lab", timeout=60).status_code) != 200:
        assert time.monotonic() < deadline, f"JupyterLab not back after the requeue: {status}"
        time.sleep(1)
    assert server_model(hub, "alice")["url"] == old_url  # same server, same address for users
    stop_server(hub, "alice")
