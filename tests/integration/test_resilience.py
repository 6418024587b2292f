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


def lab_page(browser, hub, username: str, timeout: float = 60) -> str:
    """JupyterLab's page of the user's server, read until it is JupyterLab itself: the
    spawn-pending page answers 200 too, so the status alone proves nothing."""
    deadline = time.monotonic() + timeout
    while True:
        page = browser.get(f"{hub.url}/user/{username}/lab", timeout=60)
        if page.status_code == 200 and "jupyter-config-data" in page.text:
            return page.text
        assert time.monotonic() < deadline, f"no JupyterLab: {page.status_code} {page.text[:300]}"
        time.sleep(0.5)


def scancel(site, job_id: str) -> None:
    subprocess.run(["scancel", job_id], env={**os.environ, **site.env()}, check=True, timeout=30)


def wait_gone(hub, username: str, timeout: float, why: str) -> None:
    """Wait until the hub lists no server of ``username``; fail saying ``why`` it should."""
    deadline = time.monotonic() + timeout
    while server_model(hub, username):
        assert time.monotonic() < deadline, why
        time.sleep(0.5)


def cleanup(hub, *usernames: str) -> None:
    """Stop what a test left running (in ``finally``: one failure must not cascade)."""
    for username in usernames:
        if server_model(hub, username):
            stop_server(hub, username)


def test_hub_restart_resumes_running_servers(hub, idp, slurm_sites):
    """A restart resumes the running server, and forgets one whose job ended meanwhile."""
    alpha, beta = slurm_sites["alpha"], slurm_sites["beta"]
    hub_login(hub, idp, "alice")
    hub_login(hub, idp, "dave")
    try:
        job_id = spawn(hub, "alice", "alpha")
        ended = spawn(hub, "dave", "beta")
        hub.stop()
        try:
            scancel(beta, ended)  # the job ends while nobody watches: no orphan server after
            deadline = time.monotonic() + 30
            while user_jobs(beta, "dave"):
                assert time.monotonic() < deadline, "scancel did not end the job"
                time.sleep(0.5)
        finally:
            hub.start()
        model = wait_for_server(hub, "alice")
        assert model["state"]["job_id"] == job_id
        assert (job_id, "RUNNING") in user_jobs(alpha, "alice")
        # the proxy was restarted with the hub; the route to the running server is back
        lab_page(hub_login(hub, idp, "alice"), hub, "alice")
        wait_gone(hub, "dave", 30, "the hub resumed a server whose job had ended")
    finally:
        cleanup(hub, "alice", "dave")
    assert not user_jobs(alpha, "alice") and not user_jobs(beta, "dave")


def test_controller_outage_keeps_servers_and_recovers(hub, idp, slurm_sites):
    alpha = slurm_sites["alpha"]
    browser = hub_login(hub, idp, "bob")
    try:
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
        assert server_model(hub, "bob")["ready"]
        lab_page(browser, hub, "bob")  # the server itself never went away
        assert "Traceback" not in hub_log_since(hub, mark)  # the outage raised nothing
        # polling resumed: a job ended after the outage is seen within a few polls (2 s)
        scancel(alpha, job_id)
        wait_gone(hub, "bob", 30, "the hub stopped polling after the outage")
        assert f"Job {job_id} of bob on site alpha is gone" in hub_log_since(hub, mark)
    finally:
        cleanup(hub, "bob")
    assert not user_jobs(alpha, "bob")


def test_job_cancelled_outside_the_hub_stops_the_server(hub, idp, slurm_sites):
    beta = slurm_sites["beta"]
    hub_login(hub, idp, "dave")
    try:
        job_id = spawn(hub, "dave", "beta")
        mark = log_mark(hub)
        scancel(beta, job_id)
        wait_gone(hub, "dave", 60, "the hub still lists a server whose job is gone")
        assert f"Job {job_id} of dave on site beta is gone" in hub_log_since(hub, mark)
    finally:
        cleanup(hub, "dave")
    assert not user_jobs(beta, "dave")


def test_requeued_job_is_followed(hub, idp, slurm_sites):
    """Slurm requeues the job (node failure, preemption): the server comes back at its new port.

    Slurm holds a requeued job for 120 s before it may run again, so this test takes minutes.
    """
    alpha = slurm_sites["alpha"]
    browser = hub_login(hub, idp, "alice")
    try:
        job_id = spawn(hub, "alice", "alpha")
        old_url = server_model(hub, "alice")["url"]
        lab_page(browser, hub, "alice")
        mark = log_mark(hub)
        subprocess.run(
            ["scontrol", "requeue", job_id],
            env={**os.environ, **alpha.env()},
            check=True,
            timeout=30,
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
        lab_page(browser, hub, "alice")
        assert server_model(hub, "alice")["url"] == old_url  # same server, same address for users
    finally:
        cleanup(hub, "alice")
