"""A server waiting in a busy queue: progress says why, and the user can give up.

The node of site alpha is filled by another user's job, so alice's server job waits in the
queue; the spawn-pending page's event stream shows the job, Slurm's reason and the expected
start, and stopping the pending server cancels its job.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from fixtures.hub import api, hub_login, server_model
from fixtures.slurm import occupied_node, user_jobs

pytestmark = [pytest.mark.integration, pytest.mark.slow]


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
    with occupied_node(alpha):
        hub_login(hub, idp, "alice")
        options = {"site": "alpha", "partition": "interactive", "cores": 4}
        response = api(hub, "POST", "/users/alice/server", json={"user_options": options})
        assert response.status_code == 202, response.text  # still pending: accepted
        messages = progress_messages(hub, "alice", until="waiting in the queue")
        waiting = messages[-1]
        assert "Alpha HPC centre" in waiting and "(Resources)" in waiting, messages
        job_id = waiting.split()[1]
        assert (job_id, "PENDING") in user_jobs(alpha, "alice")
        assert server_model(hub, "alice")["pending"] == "spawn"

        stop = api(hub, "DELETE", "/users/alice/server")
        assert stop.status_code in (202, 204), stop.text
        deadline = time.monotonic() + 60
        while server_model(hub, "alice") or user_jobs(alpha, "alice"):
            assert time.monotonic() < deadline, "the pending job was not cancelled"
            time.sleep(0.5)
