"""A server waiting in a busy queue: progress says why, and the user can give up.

The node of site alpha is filled by another user's job, so alice's server job waits in the
queue; the spawn-pending page's event stream shows the job, Slurm's reason and the expected
start, and stopping the pending server cancels its job.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import requests

from fixtures.hub import api, hub_login, server_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def squeue(site, *args: str) -> str:
    return subprocess.run(
        ["squeue", "--noheader", *args],
        env={**os.environ, **site.env()},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


def progress_messages(hub, username: str, until: str, timeout: float = 60) -> list[str]:
    """Messages of the spawn-pending page's event stream, read until one contains ``until``."""
    messages: list[str] = []
    with requests.get(
        f"{hub.url}/hub/api/users/{username}/server/progress",
        headers={"Authorization": f"token {hub.api_token}"},
        stream=True,
        timeout=timeout,
    ) as stream:
        deadline = time.monotonic() + timeout
        for line in stream.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                messages.append(json.loads(line[5:]).get("message", ""))
                if until in messages[-1]:
                    return messages
            assert time.monotonic() < deadline, messages
    raise AssertionError(f"stream ended without {until!r}: {messages}")


def test_pending_server_shows_the_queue_and_can_be_cancelled(hub, idp, slurm_sites):
    alpha = slurm_sites["alpha"]
    blocker = (
        subprocess.run(
            [
                "sudo",
                "-n",
                "-u",
                "bob",
                "--preserve-env=SLURM_CONF",
                "sbatch",
                "--parsable",
                "--partition=batch",
                "--cpus-per-task=4",
                "--mem=1G",
                "--time=10",
                "--output=/dev/null",
                "--chdir=/tmp",
                "--wrap=sleep 600",
            ],
            env={**os.environ, **alpha.env()},
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        .stdout.strip()
        .split(";")[0]
    )
    try:
        deadline = time.monotonic() + 30
        while "RUNNING" not in squeue(alpha, f"--jobs={blocker}", "--format=%T"):
            assert time.monotonic() < deadline, "the blocking job did not start"
            time.sleep(0.5)
        hub_login(hub, idp, "alice")
        options = {"site": "alpha", "partition": "interactive", "cores": 4}
        response = api(hub, "POST", "/users/alice/server", json={"user_options": options})
        assert response.status_code == 202, response.text  # still pending: accepted
        messages = progress_messages(hub, "alice", until="waiting in the queue")
        waiting = messages[-1]
        assert "Alpha HPC centre" in waiting and "(Resources)" in waiting, messages
        job_id = waiting.split()[1]
        assert f"{job_id}|PENDING" in squeue(alpha, "--user=alice", "--format=%i|%T")
        assert server_model(hub, "alice")["pending"] == "spawn"

        stop = api(hub, "DELETE", "/users/alice/server")
        assert stop.status_code in (202, 204), stop.text
        deadline = time.monotonic() + 60
        while server_model(hub, "alice") or squeue(alpha, "--user=alice", "--format=%i"):
            assert time.monotonic() < deadline, "the pending job was not cancelled"
            time.sleep(0.5)
    finally:
        subprocess.run(["scancel", blocker], env={**os.environ, **alpha.env()}, timeout=30)
