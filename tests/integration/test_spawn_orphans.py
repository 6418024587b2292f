"""No job is left behind by a spawn that did not finish (issue 16, item 7).

After a spawn whose job fails at its start, a spawn that runs out of ``start_timeout`` while its
job waits in the queue, and a hub restart while a spawn waits in the queue, the user's site has
no job of that server and the hub shows the server stopped.  The session's hub is restarted for
these tests with a short ``start_timeout`` and a launcher that fails (``/bin/false``: the job
runs and ends at once), and restarted as it was by the last test, whose restart is the one
under test.  For the restart, *stopped* was
chosen over *found again*: JupyterHub cannot resume a pending spawn (no spawn waits for the
job's port report any more, which the hub refuses outside a spawn), so the spawner, which now
saves the job id as soon as ``sbatch`` returns, cancels that job at the hub's first poll.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from fixtures.hub import api, hub_login, server_model
from fixtures.slurm import occupied_node, user_jobs

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.spawner]

#: seconds a spawn may take on the restarted hub (a queued job waits longer); long enough that
#: the restart test's hub stops before the pending spawn would time out, even on a busy machine
SHORT_START_TIMEOUT = 20
#: what the restarted hub changes in the session hub's configuration
TEST_CONFIG = {
    "Spawner": {"start_timeout": SHORT_START_TIMEOUT},
    "SiteSpawner": {"launcher": ["/bin/false"]},  # the job runs, then fails before any server
}


def log_mark(hub) -> int:
    return len((hub.state_dir / "jupyterhub.log").read_text(errors="replace"))


def log_since(hub, mark: int) -> str:
    return (hub.state_dir / "jupyterhub.log").read_text(errors="replace")[mark:]


def wait_for(hub, condition, timeout: float, why: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{why}; hub log:\n{hub.log()}"
        time.sleep(0.25)


def saved_state(hub, username: str) -> dict:
    """The hub's saved spawner state of the user's default server (stopped ones included)."""
    user = api(hub, "GET", f"/users/{username}?include_stopped_servers=1").json()
    return user.get("servers", {}).get("", {}).get("state") or {}


def queued_spawn(hub, alpha, username: str) -> str:
    """Start ``username``'s server on the full site ``alpha``; its job's id once it queues.

    The request runs in a thread: the hub holds a spawn request up to its slow_spawn_timeout
    (10 s), and a spawn that times out sooner answers 500.
    """
    options = {"site": "alpha", "partition": "interactive", "cores": 4}

    def post() -> None:
        with contextlib.suppress(requests.RequestException):  # the hub may restart meanwhile
            api(hub, "POST", f"/users/{username}/server", json={"user_options": options})

    request = threading.Thread(target=post, daemon=True)
    request.start()
    deadline = time.monotonic() + 60
    while True:
        pending = [job for job, state in user_jobs(alpha, username) if state == "PENDING"]
        if pending:
            return pending[0]
        assert time.monotonic() < deadline, f"no queued job of {username}: {hub.log()}"
        time.sleep(0.25)


def restore(hub, saved: dict) -> None:
    """Restart ``hub`` with the sections of its configuration in ``saved`` as they were."""
    hub.stop()
    hub.extra_config.update(saved)
    for section in [s for s in TEST_CONFIG if s not in saved]:
        hub.extra_config.pop(section, None)
    saved.clear()
    hub.start()


@pytest.fixture(scope="module")
def test_hub(hub) -> Iterator[dict]:
    """The session hub restarted with :data:`TEST_CONFIG`; yields what to restore (emptied
    once the last test restored it), restores it after the module otherwise."""
    saved = {s: dict(hub.extra_config[s]) for s in TEST_CONFIG if s in hub.extra_config}
    hub.stop()
    for section, values in TEST_CONFIG.items():
        hub.extra_config[section] = {**saved.get(section, {}), **values}
    hub.start()
    state = {"saved": saved, "restored": False}
    try:
        yield state
    finally:
        if not state["restored"]:
            restore(hub, saved)


def test_job_failing_at_start_leaves_nothing_behind(hub, idp, slurm_sites, test_hub):
    alpha = slurm_sites["alpha"]
    hub_login(hub, idp, "bob")
    mark = log_mark(hub)
    response = api(hub, "POST", "/users/bob/server", json={"user_options": {"site": "alpha"}})
    assert response.status_code in (202, 500), response.text
    wait_for(hub, lambda: not server_model(hub, "bob"), 60, "the failed server is listed")
    log = log_since(hub, mark)
    # seen when the job ended, not at start_timeout
    assert "ended before JupyterLab started" in log and "failed to start in" not in log, log
    assert not user_jobs(alpha, "bob")
    assert not saved_state(hub, "bob").get("job_id")


def test_timed_out_pending_spawn_leaves_no_job(hub, idp, slurm_sites, test_hub):
    alpha = slurm_sites["alpha"]
    with occupied_node(alpha, user="bob"):  # alice's server job queues behind bob's
        hub_login(hub, idp, "alice")
        mark = log_mark(hub)
        job_id = queued_spawn(hub, alpha, "alice")
        # the hub gives up after start_timeout and cancels the queued job
        wait_for(hub, lambda: not server_model(hub, "alice"), 60, "the timed-out spawn is listed")
        wait_for(hub, lambda: not user_jobs(alpha, "alice"), 30, f"job {job_id} left queued")
        assert f"failed to start in {SHORT_START_TIMEOUT} seconds" in log_since(hub, mark)
        assert not saved_state(hub, "alice").get("job_id")


def test_hub_restart_during_a_pending_spawn_leaves_no_job(hub, idp, slurm_sites, test_hub):
    alpha = slurm_sites["alpha"]
    with occupied_node(alpha, user="bob"):
        hub_login(hub, idp, "alice")
        job_id = queued_spawn(hub, alpha, "alice")
        # saved as soon as sbatch returned, before start() did
        assert saved_state(hub, "alice").get("job_id") == job_id
        mark = log_mark(hub)
        test_hub["restored"] = True
        restore(hub, test_hub["saved"])  # the restart under test
        # the restarted hub cancelled the job it found starting, and stopped the server
        wait_for(hub, lambda: not server_model(hub, "alice"), 60, "the pending server is listed")
        wait_for(hub, lambda: not user_jobs(alpha, "alice"), 30, f"job {job_id} left queued")
    log = log_since(hub, mark)
    assert f"Job {job_id} of alice on site alpha was still starting" in log, log[-3000:]
    assert not saved_state(hub, "alice").get("job_id")
