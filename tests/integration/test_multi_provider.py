"""Federated identity with two real OpenID providers (different issuers) in front of one hub.

The session hub trusts ``idp`` (primary provider ``continuum``) and ``idp2`` (provider
``partner``, its own entitlement namespace).  Sign-ins go over HTTP through each provider's
own login page, like :func:`fixtures.hub.hub_login`; hub users and groups are read back
through the REST API and the identity table.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from continuum_federation.hub import LocalHub
from continuum_federation.idp import ADMIN_GROUP, VO_HEP, VO_RADIO
from fixtures.hub import api, begin_login, hub_login
from fixtures.idp import TIMEOUT

pytestmark = [pytest.mark.integration, pytest.mark.identity]


def user(hub: LocalHub, name: str) -> dict[str, Any] | None:
    """The hub's model of user ``name`` (``None`` when there is no such user)."""
    response = api(hub, "GET", f"/users/{name}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def identities(hub: LocalHub, username: str) -> list[tuple[str, str]]:
    """``(provider, issuer)`` of each identity the hub maps to ``username``."""
    with closing(sqlite3.connect(hub.state_dir / "identities.sqlite")) as db:
        rows = db.execute(
            "SELECT provider, issuer FROM identities WHERE username = ? ORDER BY provider",
            (username,),
        ).fetchall()
    return [tuple(row) for row in rows]


def signed_in(browser: requests.Session) -> bool:
    return any(c.name.startswith("jupyterhub-session-id") for c in browser.cookies)


def test_sign_in_through_each_provider(hub, idp, idp2):
    hub_login(hub, idp, "dave")
    dave = user(hub, "dave")
    assert dave["admin"] is True
    assert {ADMIN_GROUP, VO_RADIO} <= set(dave["groups"])
    assert identities(hub, "dave") == [("continuum", idp.issuer)]

    hub_login(hub, idp2, "erin", provider="partner")
    erin = user(hub, "erin")
    assert erin["groups"] == [VO_RADIO] and not erin["admin"]
    assert identities(hub, "erin") == [("partner", idp2.issuer)]


def test_same_preferred_username_at_two_providers_is_two_users(hub, idp, idp2):
    hub_login(hub, idp2, "alice", provider="partner")
    hub_login(hub, idp, "alice")
    home, partner = user(hub, "alice"), user(hub, "alice-partner")
    assert set(home["groups"]) >= {VO_HEP, VO_RADIO}
    assert partner["groups"] == [VO_HEP]
    assert identities(hub, "alice") == [("continuum", idp.issuer)]
    assert identities(hub, "alice-partner") == [("partner", idp2.issuer)]
    # stable: a second sign-in lands on the same users
    hub_login(hub, idp2, "alice", provider="partner")
    assert identities(hub, "alice-partner") == [("partner", idp2.issuer)]


def test_identity_linked_by_a_trusted_claim_is_one_user(hub, idp, idp2):
    # bbrown at the partner is Bob (same voperson_id); Bob has signed in at home before
    hub_login(hub, idp, "bob")
    hub_login(hub, idp2, "bbrown", provider="partner")
    assert user(hub, "bbrown") is None
    assert identities(hub, "bob") == [("continuum", idp.issuer), ("partner", idp2.issuer)]
    # the groups follow the provider of the latest sign-in, trusted for its own namespace
    assert user(hub, "bob")["groups"] == [VO_HEP]


def test_entitlement_in_another_providers_namespace_is_ignored(hub, idp2):
    # mallory's proxy asserts the admin group in the home provider's namespace
    hub_login(hub, idp2, "mallory", provider="partner")
    mallory = user(hub, "mallory")
    assert mallory["admin"] is False and mallory["groups"] == [VO_HEP]


def test_sign_in_started_at_one_provider_cannot_finish_at_another(hub, idp):
    browser, callback = begin_login(hub, idp, "carol")
    query = urlsplit(callback).query
    assert parse_qs(query)["iss"] == [idp.issuer]  # RFC 9207, the provider sends it
    response = browser.get(f"{hub.url}/hub/oauth_callback/partner?{query}", timeout=TIMEOUT)
    assert response.status_code == 400
    assert "another identity provider" in response.text
    assert not signed_in(browser)


@pytest.mark.parametrize("iss", ["other", "missing"])
def test_authorization_response_must_name_the_providers_issuer(hub, idp, idp2, iss):
    browser, callback = begin_login(hub, idp2, "erin", provider="partner")
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert params.pop("iss") == idp2.issuer
    if iss == "other":
        params["iss"] = idp.issuer
    response = browser.get(
        f"{hub.url}/hub/oauth_callback/partner?{urlencode(params)}", timeout=TIMEOUT
    )
    assert response.status_code == 400
    assert not signed_in(browser)


def test_authorization_requests_carry_nonce_pkce_and_own_redirect_uri(hub, idp, idp2):
    for provider, issuer, callback in [
        (None, idp.issuer, f"{hub.url}/hub/oauth_callback"),
        ("continuum", idp.issuer, f"{hub.url}/hub/oauth_callback"),
        ("partner", idp2.issuer, f"{hub.url}/hub/oauth_callback/partner"),
    ]:
        path = "/hub/oauth_login" + (f"/{provider}" if provider else "")
        response = requests.get(hub.url + path, allow_redirects=False, timeout=TIMEOUT)
        assert response.status_code == 302
        location = response.headers["Location"]
        assert location.startswith(issuer + "/")
        params = parse_qs(urlsplit(location).query)
        assert params["redirect_uri"] == [callback]
        assert params["code_challenge_method"] == ["S256"]
        assert len(params["nonce"][0]) >= 32 and params["state"][0]
        assert "oauthenticator-state" in response.cookies


def test_login_page_offers_each_provider_and_remembers_the_last(hub):
    browser = requests.Session()
    page = browser.get(f"{hub.url}/hub/login", timeout=TIMEOUT).text
    assert 'href="/hub/oauth_login/continuum' in page
    assert 'href="/hub/oauth_login/partner' in page
    assert "Sign in with Continuum demo IdP" in page
    assert "Sign in with Partner University proxy" in page
    assert "used last time" not in page
    browser.get(f"{hub.url}/hub/oauth_login/partner", allow_redirects=False, timeout=TIMEOUT)
    page = browser.get(f"{hub.url}/hub/login", timeout=TIMEOUT).text
    marked = page.split("used last time")[0].rsplit("<a ", 1)[-1]
    assert 'data-provider="partner"' in marked


def test_unknown_provider_is_not_found(hub):
    for path in ("oauth_login/nobody", "oauth_callback/nobody?code=x&state=y"):
        response = requests.get(f"{hub.url}/hub/{path}", allow_redirects=False, timeout=TIMEOUT)
        assert response.status_code == 404
