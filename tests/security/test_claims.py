"""Entitlement-like values where users can put them: none of them makes anybody an admin.

Groups (and with them admin rights and site access) come only from ``eduperson_entitlement``
values in a namespace and from an authority trusted *for the provider that asserted them*.
Display names, e-mail addresses, extra claims and the suggested username are the user's to
edit at many identity providers, so the hub must not read rights, nor an existing account,
from them.
"""

from __future__ import annotations

import pytest
import requests
from security_support import (
    ADMIN_ENTITLEMENT,
    ADMIN_GROUP,
    PARTNER,
    SYSTEM_LOGINS,
    signed_in,
    user_model,
)

from continuum_federation.hub import LocalHub
from continuum_federation.idp import VO_HEP, OpenIDProvider
from fixtures.attacker import BackChannelAttacker
from fixtures.hub import api, begin_login, finish_login
from fixtures.idp import TIMEOUT

pytestmark = [pytest.mark.integration, pytest.mark.security]


def sign_in(
    hub: LocalHub, idp: OpenIDProvider, username: str, provider: str | None = None
) -> requests.Session:
    browser, callback = begin_login(hub, idp, username, provider=provider)
    response = finish_login(browser, callback)
    assert response.status_code == 302 and signed_in(hub, browser), response.text[:500]
    return browser


def whoami(hub: LocalHub, browser: requests.Session) -> str:
    """The hub user a browser's cookies sign in as."""
    response = browser.get(f"{hub.url}/hub/api/user", timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:300]
    return str(response.json()["name"])


def user_names(hub: LocalHub) -> set[str]:
    response = api(hub, "GET", "/users")
    response.raise_for_status()
    return {user["name"] for user in response.json()}


def test_admin_group_in_untrusted_places_grants_nothing(
    sec_hub: LocalHub, sec_idp: OpenIDProvider, attacker: BackChannelAttacker
) -> None:
    """``mallory`` (a HEP member) spells the admin group in her name, given and family name,
    e-mail, and in entitlements of untrusted namespaces and authorities."""
    sign_in(sec_hub, sec_idp, "mallory")
    [info] = [e.delivered for e in attacker.exchanges if e.path == "/userinfo"]
    assert ADMIN_GROUP in info["name"] and ADMIN_GROUP in info["email"]  # she did send them
    user = user_model(sec_hub, "mallory")
    assert user["groups"] == [VO_HEP]
    assert user["admin"] is False


def test_extra_claims_naming_the_admin_group_grant_nothing(
    sec_hub: LocalHub, sec_idp: OpenIDProvider, attacker: BackChannelAttacker, victim: str
) -> None:
    """Claims some hubs read rights from (``groups``, ``roles``, ``admin``, …) are ignored."""
    attacker.rewrite_userinfo = lambda info: {
        **info,
        "groups": [ADMIN_GROUP],
        "roles": ["admin", ADMIN_GROUP],
        "admin": True,
        "is_admin": True,
        "entitlement": ADMIN_ENTITLEMENT,
        "eduPersonEntitlement": [ADMIN_ENTITLEMENT],
        "nickname": ADMIN_ENTITLEMENT,
    }
    sign_in(sec_hub, sec_idp, victim)
    user = user_model(sec_hub, victim)
    assert user["groups"] == [VO_HEP]
    assert user["admin"] is False


def test_another_providers_entitlements_grant_nothing(
    sec_hub: LocalHub, sec_idp2: OpenIDProvider, attacker2: BackChannelAttacker
) -> None:
    """``pat-admin`` at the partner holds the admin group in the *primary* provider's namespace,
    which the partner is not trusted for: only the partner's own HEP entitlement counts."""
    sign_in(sec_hub, sec_idp2, "pat-admin", PARTNER)
    [info] = [e.delivered for e in attacker2.exchanges if e.path == "/userinfo"]
    assert ADMIN_ENTITLEMENT in info["eduperson_entitlement"]
    [name] = [n for n in user_names(sec_hub) if n.startswith("pat-admin")]
    user = user_model(sec_hub, name)
    assert user["groups"] == [VO_HEP]
    assert user["admin"] is False


def test_suggested_username_of_an_existing_user_does_not_take_their_account(
    sec_hub: LocalHub,
    sec_idp: OpenIDProvider,
    attacker: BackChannelAttacker,
    victim: str,
    other_victim: str,
) -> None:
    """``other_victim`` edits their ``preferred_username`` to ``victim``, an existing user: they
    get an account of their own, never the victim's (accounts belong to ``(issuer, sub)``)."""
    sign_in(sec_hub, sec_idp, victim)
    before = user_names(sec_hub)
    attacker.rewrite_userinfo = lambda info: {**info, "preferred_username": victim}
    browser = sign_in(sec_hub, sec_idp, other_victim)
    exchange = [e for e in attacker.exchanges if e.path == "/userinfo"][-1]
    assert exchange.delivered["preferred_username"] == victim
    new_names = user_names(sec_hub) - before
    assert len(new_names) == 1, new_names
    [new_name] = new_names
    assert new_name != victim
    assert whoami(sec_hub, browser) == new_name


@pytest.mark.parametrize("login", SYSTEM_LOGINS)
def test_login_named_like_a_system_account_gets_no_system_account(
    login: str, sec_hub: LocalHub, sec_idp: OpenIDProvider, attacker: BackChannelAttacker
) -> None:
    """A person whose login at the provider is ``root`` (or ``slurm``, …) may sign in, but no
    server of theirs may start as that system account (with the default account mapping,
    ``{username}``, it would)."""
    browser = sign_in(sec_hub, sec_idp, login)
    name = whoami(sec_hub, browser)
    response = api(sec_hub, "POST", f"/users/{name}/server", json={"user_options": {}})
    assert response.status_code in (400, 403), response.text[:500]
    assert "no account" in response.json()["message"], response.text[:500]
    assert not user_model(sec_hub, name)["servers"]
