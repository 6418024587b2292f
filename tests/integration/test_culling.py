"""Idle servers are culled by the managed jupyterhub-idle-culler, and leave no Slurm job.

Runs on a hub of its own with a 10-second idle timeout, so culling cannot touch the servers of
the other tests.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time

import pytest

from continuum_hub.federation.hub import LocalHub
from fixtures.hub import ADMIN_SCOPES, api, server_model, wait_for_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def culling_hub(federation_root, repo_root, idp, slurm_sites, unix_users):
    token = secrets.token_hex(32)
    hub = LocalHub(
        federation_root / "culling-hub",
        repo_root,
        issuer=idp.issuer,
        client_id=idp.client_id,
        client_secret=idp.client_secret,
        site_confs={name: site.conf_path for name, site in slurm_sites.items()},
        extra_config={
            "JupyterHub": {
                "services": [{"name": "test-admin", "api_token": token}],
                "load_roles": [
                    {"name": "test-admin", "scopes": ADMIN_SCOPES, "services": ["test-admin"]}
                ],
            },
            "CullerService": {"timeout": 10, "cull_every": 2},
            "Spawner": {"poll_interval": 2},
        },
    )
    hub.api_token = token  # type: ignore[attr-defined]
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
    assert "idle-culler" in (hub.state_dir / "jupyterhub.log").read_text()
