"""Credentials sent in URLs stay out of the real hub's log (continuum_hub.logscrub)."""

from __future__ import annotations

import secrets

import pytest
import requests

from continuum_federation.hub import LocalHub
from fixtures.slurm import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.security]


def test_refused_api_token_in_the_query_is_not_logged(hub: LocalHub) -> None:
    token = secrets.token_hex(16)
    response = requests.get(f"{hub.url}/hub/api/users/alice?token={token}", timeout=30)
    assert response.status_code == 403
    log = hub.state_dir / "jupyterhub.log"
    # tornado's own warning for the refused request names the URI (scrubbed)
    scrubbed = "/hub/api/users/alice?token=[secret]"
    wait_until(lambda: scrubbed in log.read_text(), 30, what="the refusal in the log")
    assert token not in log.read_text()
