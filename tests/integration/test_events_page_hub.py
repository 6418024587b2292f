"""The instructors' events page ``/hub/continuum/events`` served by the session hub.

Bob (a member of ``vo.hep.example``, no instructor) is refused with 403 and the reason; Alice,
an instructor of ``vo.hep.example`` for this module, gets the form with the partitions her groups
allow (alpha's for HEP, beta's for radio), only the VO she instructs and the navigation bar's
*Events* link, which Bob's pages lack; a visitor who is not signed in is sent to the login page.
Creating an event through the form runs in Chromium in ``tests/browser/test_workshop_browser.py``.
"""

from __future__ import annotations

import re

import pytest
import requests

from fixtures.hub import hub_login
from fixtures.workshops import instructor

pytestmark = [pytest.mark.integration, pytest.mark.workshops]


def test_events_page_for_instructors_only(hub, idp, slurm_sites):
    url = f"{hub.url}/hub/continuum/events"
    anonymous = requests.get(url, allow_redirects=False, timeout=30)
    assert anonymous.status_code == 302 and "/hub/login" in anonymous.headers["Location"]

    bob_session = hub_login(hub, idp, "bob")
    bob = bob_session.get(url, timeout=30)
    assert bob.status_code == 403
    assert "Only instructors and hub administrators may create events" in bob.content.decode()
    home = bob_session.get(f"{hub.url}/hub/home", timeout=30)
    assert home.status_code == 200 and ">Events<" not in home.content.decode()
    assert "Events page refused to bob" in hub.log(200)

    alice = hub_login(hub, idp, "alice")
    instructor(hub, "alice")
    try:
        page = alice.get(url, timeout=30)
    finally:
        instructor(hub, "alice", member=False)
    assert page.status_code == 200, page.text
    html = page.content.decode()
    options = re.findall(r'<option value="([a-z]+/[a-z]+)">', html)
    assert options == ["alpha/interactive", "alpha/batch", "beta/gpu"], options
    assert 'value="vo.hep.example" checked' in html and 'value="vo.radio.example"' not in html
    assert 'id="event-form"' in html and "Folders under: " in html
    assert 'href="/hub/continuum/events">Events<' in html  # the navigation bar's link
