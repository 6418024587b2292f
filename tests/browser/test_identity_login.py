"""Two identity providers on the hub's login page, and the groups an admin sees, in Chromium.

The login page has one button per provider and marks the one this browser used last; each
button leads to its own provider's login page.  Dave (admin by entitlement) opens the hub's
admin page and finds the groups made from everyone's trusted entitlements — and not the admin
group that mallory's partner proxy asserts in the home provider's namespace.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from continuum_federation.idp import ADMIN_GROUP, VO_HEP, VO_RADIO
from fixtures.browser import sign_in
from fixtures.hub import api, hub_login

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.identity]

HOME_BUTTON = "Sign in with Continuum demo IdP"
PARTNER_BUTTON = "Sign in with Partner University proxy"


def sign_in_at(page: Page, button: str, title: str, username: str, password: str) -> None:
    page.get_by_role("button", name=button).click()
    expect(page).to_have_title(re.compile(title))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/hub/(spawn|home)"))


def forget_session(page: Page) -> None:
    """Sign the browser out by dropping the hub's cookies, keeping its provider preference."""
    kept = [c for c in page.context.cookies() if c["name"] == "continuum-last-provider"]
    page.context.clear_cookies()
    page.context.add_cookies(kept)


def last_used(page: Page) -> str | None:
    marked = page.locator("#provider-login div", has=page.locator(".last-used"))
    if marked.count() == 0:
        return None
    return marked.locator("a").get_attribute("data-provider")


def test_sign_in_through_either_providers_button(page: Page, hub, idp, idp2) -> None:
    page.goto(f"{hub.url}/hub/login")
    expect(page.get_by_role("button", name=HOME_BUTTON)).to_be_visible()
    expect(page.get_by_role("button", name=PARTNER_BUTTON)).to_be_visible()
    assert last_used(page) is None

    sign_in_at(page, PARTNER_BUTTON, "Partner University proxy", "erin", idp2.passwords["erin"])
    erin = api(hub, "GET", "/users/erin").json()
    assert erin["groups"] == [VO_RADIO]

    forget_session(page)
    page.goto(f"{hub.url}/hub/login")
    assert last_used(page) == "partner"
    sign_in_at(page, HOME_BUTTON, "Continuum demo", "bob", idp.passwords["bob"])
    assert VO_HEP in api(hub, "GET", "/users/bob").json()["groups"]

    forget_session(page)
    page.goto(f"{hub.url}/hub/login")
    assert last_used(page) == "continuum"


def group_members(page: Page, hub_url: str, group: str) -> set[str]:
    """The members of ``group`` as the admin page's group editor lists them."""
    page.goto(f"{hub_url}/hub/admin#/groups")
    page.get_by_role("link", name=group, exact=True).click()
    members = page.locator(".users-container .item")
    expect(members.first).to_be_visible()
    return {text.strip() for text in members.all_inner_texts()}


def test_admin_page_shows_groups_from_trusted_entitlements(page: Page, hub, idp, idp2) -> None:
    hub_login(hub, idp, "alice")
    hub_login(hub, idp2, "mallory", provider="partner")
    sign_in(page, hub.url, "dave", idp.passwords["dave"])
    page.wait_for_url(re.compile(r"/hub/"))

    page.goto(f"{hub.url}/hub/admin")
    page.get_by_role("button", name="Manage Groups").click()
    groups = page.locator(".list-group-item a")
    expect(groups.first).to_be_visible()
    names = set(groups.all_inner_texts())
    assert {ADMIN_GROUP, VO_HEP, VO_RADIO} <= names

    admins = group_members(page, hub.url, ADMIN_GROUP)
    assert "dave" in admins and "mallory" not in admins and "alice" not in admins
    hep = group_members(page, hub.url, VO_HEP)
    assert {"alice", "mallory"} <= hep and "dave" not in hep
    radio = group_members(page, hub.url, VO_RADIO)
    assert {"alice", "dave"} <= radio and "mallory" not in radio
