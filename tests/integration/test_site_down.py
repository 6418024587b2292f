"""A site whose scheduler stops answering (issue 16 item 5), through the real hub: the spawn
form shows it unavailable with the reason and since when, a spawn there is refused at once
with 503 (before: 500 after 9 s), and the site comes back when its controller does.

The hub learns of the outage from its per-site probe (``ContinuumMetrics``; every 2 s in the
session hub, ``fixtures.hub``), not from a spawn that hangs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from fixtures.hub import api, hub_login, server_model
from fixtures.slurm import user_jobs

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.spawner]


def form_when(browser: requests.Session, url: str, ready: Callable[[str], bool]) -> str:
    """The spawn form, read again until ``ready`` holds for it (the probe runs every 2 s)."""
    deadline = time.monotonic() + 30
    while True:
        page = browser.get(f"{url}/hub/spawn", timeout=30)
        page.raise_for_status()
        if ready(page.text):
            return page.text
        assert time.monotonic() < deadline, f"the spawn form never changed: {page.text[:2000]}"
        time.sleep(0.5)


def test_site_without_controller_is_unavailable_and_refused_at_once(hub, idp, slurm_sites):
    beta = slurm_sites["beta"]
    dave = hub_login(hub, idp, "dave")  # radio VO: alpha and beta
    assert 'value="beta/gpu"' in form_when(dave, hub.url, lambda text: True)
    beta.stop_controller()
    try:
        form = form_when(dave, hub.url, lambda text: "has not answered since" in text)
        assert "Site Beta GPU centre is unavailable" in form
        assert 'value="beta/gpu"' not in form and 'value="alpha/interactive"' in form
        started = time.monotonic()
        response = api(hub, "POST", "/users/dave/server", json={"user_options": {"site": "beta"}})
        took = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert "Site Beta GPU centre is unavailable" in response.json()["message"]
        assert took < 3, f"the refusal took {took:.1f} s"
        assert not server_model(hub, "dave")
    finally:
        beta.start_controller()
    form_when(dave, hub.url, lambda text: 'value="beta/gpu"' in text)
    assert not user_jobs(beta, "dave")
