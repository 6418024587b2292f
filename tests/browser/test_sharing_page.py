"""The sharing page in Debian's Chromium: Bob shares his running server with Erin (a user of the
partner's provider) through the page's form, her access shows and she reaches the server, Bob
makes a link and revokes her access and the link.

The page's scripts call JupyterHub's share APIs with the page's XSRF token; the APIs themselves,
links accepted by another user and the instructor's view are tested in
``tests/integration/test_workshop_sharing.py``.  On failure a screenshot lands in
``test-results/``.
"""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect

from fixtures.browser import sign_in
from fixtures.hub import api, hub_login, stop_server, wait_for_server

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.workshops]

OPTIONS = {"site": "alpha", "partition": "interactive", "cores": 1, "walltime": "0:30"}


def erin_reaches_bob(hub, idp2) -> int:
    """The status of a request to Bob's server with a fresh token of Erin's (200: let in)."""
    erin = hub_login(hub, idp2, "erin", provider="partner")
    made = erin.post(
        f"{hub.url}/hub/api/users/erin/tokens",
        json={"note": "sharing page"},
        headers={"X-XSRFToken": erin.cookies.get("_xsrf", path="/hub/")},
        timeout=30,
    )
    assert made.status_code in (200, 201), made.text
    return requests.get(
        f"{hub.url}/user/bob/api/status",
        headers={"Authorization": f"token {made.json()['token']}"},
        timeout=30,
        allow_redirects=False,
    ).status_code


def test_share_by_the_page_link_and_revoke(page: Page, hub, idp, idp2, slurm_sites) -> None:
    hub_login(hub, idp2, "erin", provider="partner")  # a hub user, to be named
    hub_login(hub, idp, "bob")  # a hub user with tokens the spawn refreshes
    started = api(hub, "POST", "/users/bob/server", json={"user_options": OPTIONS})
    assert started.status_code in (201, 202, 400), started.text  # 400: already running
    try:
        wait_for_server(hub, "bob", timeout=120)
        sign_in(page, hub.url, "bob", idp.passwords["bob"])
        # back on the hub from the provider's pages, past the callback
        page.wait_for_url(lambda url: url.startswith(hub.url) and "oauth_callback" not in url)
        page.goto(f"{hub.url}/hub/continuum/sharing")
        section = page.locator('.sharing-server[data-server=""]')
        expect(section.get_by_text("running")).to_be_visible()
        expect(section.get_by_text("Nobody but you.")).to_be_visible()

        section.locator('input[name="name"]').fill("erin")
        section.get_by_role("button", name="Share", exact=True).click()
        erin_row = section.locator('tr[data-kind="user"][data-name="erin"]')
        expect(erin_row).to_be_visible()  # after the page reloaded
        assert erin_reaches_bob(hub, idp2) == 200

        section = page.locator('.sharing-server[data-server=""]')
        section.get_by_role("button", name="Make a link").click()
        link = section.locator(".share-link-url")
        expect(link).to_be_visible()
        assert "/hub/accept-share?code=" in link.input_value()

        section.locator('tr[data-name="erin"]').get_by_role("button", name="Revoke").click()
        expect(page.locator('tr[data-kind="user"][data-name="erin"]')).to_have_count(0)
        assert erin_reaches_bob(hub, idp2) == 403
        page.reload()
        links = page.locator('.sharing-server[data-server=""] tr[data-code-id]')
        expect(links).to_have_count(1)
        links.get_by_role("button", name="Revoke link").click()
        expect(page.locator('.sharing-server[data-server=""] tr[data-code-id]')).to_have_count(0)
    finally:
        stop_server(hub, "bob")
