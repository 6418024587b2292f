"""A job's end seen at once: the job tells the hub, which stops the server within seconds.

Real Slurm, real hub, real launcher: ``scancel`` makes Slurm send the job ``SIGTERM``; the
launcher reports it (``POST /hub/api/continuum/job-ending``) and the hub stops the server as
soon as the scheduler drops the job, with the reason on the user's home page.  A job whose
processes are all killed at once (``SIGKILL``, a lost node) reports nothing and is still found
by polling.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from fixtures.hub import api, hub_login, server_environ, server_model, wait_for_server
from fixtures.slurm import user_jobs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPORTED = "Server bob reported that its job is ending (cancelled)"


def log_mark(hub) -> int:
    return len((hub.state_dir / "jupyterhub.log").read_text(errors="replace"))


def hub_log_since(hub, mark: int) -> str:
    return (hub.state_dir / "jupyterhub.log").read_text(errors="replace")[mark:]


def start_bob(hub) -> str:
    """Start bob's server on alpha; its job id."""
    response = api(hub, "POST", "/users/bob/server", json={"user_options": {"site": "alpha"}})
    assert response.status_code in (201, 202), response.text
    return wait_for_server(hub, "bob")["state"]["job_id"]


def seconds_until_stopped(hub, username: str, limit: float) -> float:
    """Seconds until the hub lists no server of ``username`` (fails after ``limit``)."""
    started = time.monotonic()
    while server_model(hub, username):
        elapsed = time.monotonic() - started
        assert elapsed < limit, f"the hub still lists {username}'s server after {elapsed:.1f} s"
        time.sleep(0.1)
    return time.monotonic() - started


def job_processes(hub, account: str) -> list[int]:
    """Process ids of ``account`` whose environment names this hub's API (its server's job)."""
    marker = f"JUPYTERHUB_API_URL=http://127.0.0.1:{hub.api_port}/".encode()
    uid = pwd.getpwnam(account).pw_uid
    pids = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and proc.stat().st_uid == uid:
                if any(e.startswith(marker) for e in (proc / "environ").read_bytes().split(b"\0")):
                    pids.append(int(proc.name))
    assert pids, f"no process of {account}'s server"
    return pids


def scancel(site, *args: str) -> None:
    subprocess.run(["scancel", *args], env={**os.environ, **site.env()}, check=True, timeout=30)


def test_scancel_is_seen_at_once_with_the_reason(hub, idp, slurm_sites):
    alpha = slurm_sites["alpha"]
    browser = hub_login(hub, idp, "bob")
    job_id = start_bob(hub)
    token = server_environ(hub, "bob")["JUPYTERHUB_API_TOKEN"]
    url = f"{hub.url}/hub/api/continuum/job-ending"
    try:
        # nothing but a reason of the fixed set, and only with the server's own token
        for body in ({"reason": "cancelled", "port": 1}, {"reason": "bored"}, {}):
            refused = requests.post(
                url, json=body, headers={"Authorization": f"token {token}"}, timeout=30
            )
            assert refused.status_code == 400, (body, refused.text)
        other = requests.post(
            url,
            json={"reason": "cancelled"},
            headers={"Authorization": f"token {hub.api_token}"},
            timeout=30,
        )
        assert other.status_code == 403, other.text
        assert server_model(hub, "bob")["ready"], "a refused report changed the server"

        mark = log_mark(hub)
        scancel(alpha, job_id)
        elapsed = seconds_until_stopped(hub, "bob", limit=5.0)
        log = hub_log_since(hub, mark)
        assert REPORTED in log, log
        assert not [j for j in user_jobs(alpha, "bob") if j[0] == job_id and j[1] == "RUNNING"]
        home = browser.get(f"{hub.url}/hub/home", timeout=30)
        assert "the site ended its job (cancelled or preempted)" in home.text, elapsed
        # the report was once: the stopped server's token is no longer accepted
        late = requests.post(
            url,
            json={"reason": "cancelled"},
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )
        assert late.status_code == 403
    finally:
        api(hub, "DELETE", "/users/bob/server")


def test_a_killed_job_is_found_by_polling(hub, idp, slurm_sites):
    alpha = slurm_sites["alpha"]
    hub_login(hub, idp, "bob")
    job_id = start_bob(hub)
    try:
        mark = log_mark(hub)
        # SIGKILL to every process of the job at once, as when its node is lost: nobody is left
        # to report (Slurm's own `scancel --signal=KILL` cancels, with SIGTERM first)
        for pid in job_processes(hub, "bob"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # the session hub polls every 2 s with statuses at most 1 s old
        seconds_until_stopped(hub, "bob", limit=15.0)
        log = hub_log_since(hub, mark)
        assert f"Job {job_id} of bob on site alpha is gone" in log, log
        assert "reported that its job is ending" not in log
        assert not [j for j in user_jobs(alpha, "bob") if j[0] == job_id and j[1] == "RUNNING"]
    finally:
        api(hub, "DELETE", "/users/bob/server")
