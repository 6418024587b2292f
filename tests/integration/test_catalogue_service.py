"""The catalogue service as the hub runs it: hub tokens, the caller's groups, a hanging source.

The session ``hub`` starts the ``catalogue`` service (``CatalogueService``, on by default)
behind its proxy at ``/services/catalogue/`` with the sources of ``fixtures.catalogue``: the
built-in index, ``static`` (a private radio entry among public ones) and ``slow`` (hangs on
``hang``).  Users call it with hub tokens made as users make them (``fixtures.gateway.
user_token``); their groups come from the provider's entitlements through the hub (alice: HEP
and radio; bob: HEP only), never from the request.  Also: the service killed (the hub restarts
it) keeps users' *make available* requests.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from continuum_federation.hub import LocalHub
from continuum_federation.idp import OpenIDProvider
from continuum_federation.process import descendants
from continuum_hub.catalogue import ACCESS_SCOPE, API_PREFIX
from fixtures.catalogue import SLOW_TIMEOUT
from fixtures.gateway import user_token
from fixtures.slurm import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.catalogue]

PRIVATE = "static:radio/private-survey"


class Catalogue:
    """The service through the hub's proxy, with one token."""

    def __init__(self, hub: LocalHub, token: str) -> None:
        self.api = f"{hub.url}{API_PREFIX}"
        self.headers = {"Authorization": f"token {token}"}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method, f"{self.api}/{path}", headers=self.headers, timeout=60, **kwargs
        )

    def search(self, **params: Any) -> dict[str, Any]:
        response = self.call("GET", "search", params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())


def answers(hub: LocalHub) -> bool:
    """Whether the service answers behind the proxy (401 without a token: it is there)."""
    try:
        return requests.get(f"{hub.url}{API_PREFIX}/", timeout=5).status_code == 401
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def alice(hub: LocalHub, idp: OpenIDProvider) -> Catalogue:
    wait_until(lambda: answers(hub), timeout=90, what="the catalogue service")
    return Catalogue(hub, user_token(hub, idp, "alice", [ACCESS_SCOPE]))


@pytest.fixture(scope="module")
def bob(hub: LocalHub, idp: OpenIDProvider) -> Catalogue:
    return Catalogue(hub, user_token(hub, idp, "bob", [ACCESS_SCOPE]))


def test_tokens_without_the_scope_are_refused(
    alice: Catalogue, hub: LocalHub, idp: OpenIDProvider
) -> None:
    assert requests.get(f"{hub.url}{API_PREFIX}/search", timeout=30).status_code == 401
    other = Catalogue(hub, user_token(hub, idp, "alice", ["read:users:activity!user"]))
    response = other.call("GET", "search")
    assert response.status_code == 403 and ACCESS_SCOPE in response.json()["message"]


def test_a_private_radio_entry_is_alices_not_bobs(alice: Catalogue, bob: Catalogue) -> None:
    found = alice.search(q="radio", source="static", facets=1)
    assert [e["id"] for e in found["entries"]] == [PRIVATE, "static:radio/public-sky"]
    seen = bob.search(q="radio", source="static", facets=1)
    assert [e["id"] for e in seen["entries"]] == ["static:radio/public-sky"]
    assert seen["total"] == 1 and seen["facets"]["source"] == {"static": 1}
    path = f"entries/{quote(PRIVATE, safe='')}"
    entry = alice.call("GET", path)
    assert entry.status_code == 200 and entry.json()["sites"] == ["beta"]
    hidden = bob.call("GET", path)
    assert hidden.status_code == 404 and hidden.json() == {"message": "no such entry"}


def test_a_hanging_source_does_not_block_search(alice: Catalogue) -> None:
    started = time.monotonic()
    found = alice.search(q="hang radio", source=["static", "slow"])
    assert time.monotonic() - started < SLOW_TIMEOUT + 5
    status = {s["name"]: s for s in found["sources"]}
    assert status["slow"]["ok"] is False
    assert status["slow"]["message"] == f"timed out after {SLOW_TIMEOUT:g} s"
    assert status["static"]["ok"] is True


def service_pid(hub: LocalHub) -> int | None:
    """The catalogue service's process among the hub's descendants."""
    assert hub.process is not None and hub.process.proc is not None
    for pid in descendants(hub.process.proc.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"continuum_hub.catalogue" in argv:
            return pid
    return None


def test_requests_survive_a_restart_of_the_service(
    alice: Catalogue, bob: Catalogue, hub: LocalHub
) -> None:
    path = f"entries/{quote('static:hep/run-2024', safe='')}/make-available"
    refused = bob.call("POST", path, json={"site": "beta"})  # beta is the radio VO's only
    assert refused.status_code == 403, refused.text
    made = alice.call("POST", path, json={"site": "beta"})
    assert made.status_code == 201, made.text
    request = made.json()
    pid = service_pid(hub)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: service_pid(hub) not in (None, pid), timeout=60, what="a new service")
    wait_until(lambda: answers(hub), timeout=60, what="the restarted service")
    listed = alice.call("GET", "requests").json()["requests"]
    assert [r["id"] for r in listed] == [request["id"]]
    assert listed[0]["state"] == "replicating" and listed[0]["site"] == "beta"
    assert bob.call("GET", f"requests/{request['id']}").status_code == 404
