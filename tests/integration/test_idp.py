"""The local federation's OpenID provider (npm oidc-provider), exercised over HTTP."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from continuum_federation.idp import (
    ADMIN_GROUP,
    VO_HEP,
    VO_RADIO,
    OpenIDProvider,
    entitlement,
    with_passwords,
)
from continuum_federation.process import port_open
from fixtures.idp import (
    TIMEOUT,
    LoginFlowError,
    hub_client,
    login_code_flow,
    pkce_pair,
    refresh_tokens,
    userinfo,
)

pytestmark = pytest.mark.integration


def verify_id_token(idp: OpenIDProvider, id_token: str, nonce: str) -> dict[str, Any]:
    """The ID token's claims after checking signature, iss, aud, exp and nonce."""
    jwks = jwt.PyJWKSet.from_dict(requests.get(idp.metadata()["jwks_uri"], timeout=TIMEOUT).json())
    kid = jwt.get_unverified_header(id_token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = jwt.decode(
        id_token,
        key.key,
        algorithms=["RS256"],
        audience=idp.client_id,
        issuer=idp.issuer,
        options={"require": ["iss", "aud", "exp", "iat", "sub", "nonce"]},
    )
    assert claims["nonce"] == nonce
    return claims


def test_discovery_document(idp: OpenIDProvider) -> None:
    response = requests.get(idp.discovery_url, timeout=TIMEOUT)
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == idp.issuer
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert "eduperson_entitlement" in doc["claims_supported"]
    assert {"openid", "profile", "email", "eduperson_entitlement", "offline_access"} <= set(
        doc["scopes_supported"]
    )
    assert {"authorization_code", "refresh_token"} <= set(doc["grant_types_supported"])
    for endpoint in ("introspection_endpoint", "revocation_endpoint", "userinfo_endpoint"):
        assert doc[endpoint].startswith(idp.issuer + "/")


def test_listens_on_127_0_0_1_only(idp: OpenIDProvider) -> None:
    # 127.0.0.2 reaches the loopback interface too, but not a socket bound to 127.0.0.1.
    assert port_open(idp.port, "127.0.0.1")
    assert not port_open(idp.port, "127.0.0.2")


def test_login_page(idp: OpenIDProvider) -> None:
    _, challenge = pkce_pair()
    browser = requests.Session()
    response = browser.get(
        idp.metadata()["authorization_endpoint"],
        params={
            "client_id": idp.client_id,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": idp.redirect_uri,
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "login_hint": '<b>"mallory"</b>',
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert urlsplit(response.url).path.startswith("/interaction/")
    page = response.text
    assert "<title>Sign in \u2013 Continuum demo identity provider</title>" in page
    assert 'name="username"' in page
    assert 'name="password"' in page
    assert ">Username</label>" in page
    assert ">Password</label>" in page
    assert ">Sign in</button>" in page
    assert "Continuum Hub" in page
    # the reflected login_hint is escaped
    assert "&lt;b&gt;&quot;mallory&quot;&lt;/b&gt;" in page
    assert "<b>" not in page
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_code_flow_with_pkce(idp: OpenIDProvider) -> None:
    result = login_code_flow(idp, "alice", idp.passwords["alice"])
    callback = parse_qs(urlsplit(result["callback"]).query)
    assert callback["iss"] == [idp.issuer]
    tokens = result["tokens"]
    assert tokens["token_type"].lower() == "bearer"
    assert 0 < tokens["expires_in"] <= 3600
    assert tokens["refresh_token"]

    claims = verify_id_token(idp, tokens["id_token"], result["nonce"])
    # sub is opaque: neither the username nor anything containing it
    assert "alice" not in claims["sub"]

    info = userinfo(idp, tokens["access_token"])
    assert info.status_code == 200
    data = info.json()
    assert data["sub"] == claims["sub"]
    assert data["preferred_username"] == "alice"
    assert data["name"] == "Alice Adams"
    assert data["email"] == "alice@continuum.example"
    assert data["email_verified"] is True
    assert sorted(data["eduperson_entitlement"]) == sorted(
        [entitlement(VO_HEP), entitlement(VO_RADIO)]
    )


def test_sub_is_stable_and_distinct(idp: OpenIDProvider) -> None:
    def sub(user: str) -> str:
        tokens = login_code_flow(idp, user, idp.passwords[user])["tokens"]
        return str(userinfo(idp, tokens["access_token"]).json()["sub"])

    first, second, other = sub("bob"), sub("bob"), sub("carol")
    assert first == second
    assert first != other


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("bob", [entitlement(VO_HEP)]),
        ("carol", None),
        ("dave", [entitlement(ADMIN_GROUP), entitlement(VO_RADIO)]),
    ],
)
def test_entitlements_per_user(
    idp: OpenIDProvider, username: str, expected: list[str] | None
) -> None:
    tokens = login_code_flow(idp, username, idp.passwords[username])["tokens"]
    data = userinfo(idp, tokens["access_token"]).json()
    # like an AAI proxy, the provider leaves the claim out when there is nothing to say
    assert data.get("eduperson_entitlement") == expected


def test_refresh_token_grant(idp: OpenIDProvider) -> None:
    # no offline_access: AAI proxies hand out refresh tokens all the same
    result = login_code_flow(idp, "alice", idp.passwords["alice"], scope="openid profile")
    tokens = result["tokens"]
    assert tokens["refresh_token"]
    sub = userinfo(idp, tokens["access_token"]).json()["sub"]

    response = refresh_tokens(idp, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    fresh = response.json()
    assert fresh["access_token"] != tokens["access_token"]
    info = userinfo(idp, fresh["access_token"])
    assert info.status_code == 200
    assert info.json()["sub"] == sub


def test_refresh_needs_the_client_secret(idp: OpenIDProvider) -> None:
    tokens = login_code_flow(idp, "bob", idp.passwords["bob"])["tokens"]
    response = refresh_tokens(idp, tokens["refresh_token"], client_secret="wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_introspection_and_revocation(idp: OpenIDProvider) -> None:
    tokens = login_code_flow(idp, "bob", idp.passwords["bob"])["tokens"]
    auth = (idp.client_id, idp.client_secret)
    doc = idp.metadata()

    answer = requests.post(
        doc["introspection_endpoint"],
        data={"token": tokens["access_token"]},
        auth=auth,
        timeout=TIMEOUT,
    ).json()
    assert answer["active"] is True
    assert answer["client_id"] == idp.client_id

    revoked = requests.post(
        doc["revocation_endpoint"],
        data={"token": tokens["access_token"], "token_type_hint": "access_token"},
        auth=auth,
        timeout=TIMEOUT,
    )
    assert revoked.status_code == 200
    assert userinfo(idp, tokens["access_token"]).status_code == 401


def test_wrong_password_is_refused(idp: OpenIDProvider) -> None:
    with pytest.raises(LoginFlowError) as failure:
        login_code_flow(idp, "alice", idp.passwords["alice"] + "x")
    response = failure.value.response
    assert response.status_code == 401
    assert "Invalid username or password" in response.text
    assert "code=" not in response.headers.get("Location", "")


def test_unknown_user_is_refused(idp: OpenIDProvider) -> None:
    with pytest.raises(LoginFlowError) as failure:
        login_code_flow(idp, "mallory", idp.passwords["alice"])
    assert "Invalid username or password" in failure.value.response.text


def test_authorization_without_pkce_is_refused(idp: OpenIDProvider) -> None:
    response = requests.get(
        idp.metadata()["authorization_endpoint"],
        params={
            "client_id": idp.client_id,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": idp.redirect_uri,
            "state": "no-pkce",
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert response.is_redirect
    location = response.headers["Location"]
    assert location.startswith(idp.redirect_uri)
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["invalid_request"]
    assert "code" not in query
    assert query["state"] == ["no-pkce"]


def test_keys_survive_a_restart(tmp_path: Path, repo_root: Path) -> None:
    state = tmp_path / "idp"
    users = with_passwords()

    def provider() -> OpenIDProvider:
        return OpenIDProvider(
            state,
            repo_root,
            users=users,
            clients=[hub_client(8000, "restart-test-secret-restart-test-secret")],
            ttl={"AccessToken": 120},
            name="idp-restart",
        )

    with provider() as first:
        kids = [
            key["kid"]
            for key in requests.get(first.metadata()["jwks_uri"], timeout=TIMEOUT).json()["keys"]
        ]
        config_mode = stat.S_IMODE(first.config_path.stat().st_mode)
    assert not first.running
    assert not first.config_path.exists()
    assert config_mode == 0o600
    for name in ("jwks.json", "cookie-keys.json"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600
    assert json.loads((state / "jwks.json").read_text())["keys"][0]["kty"] == "RSA"

    with provider() as second:
        jwks = requests.get(second.metadata()["jwks_uri"], timeout=TIMEOUT).json()
        assert [key["kid"] for key in jwks["keys"]] == kids
        assert all("d" not in key for key in jwks["keys"])
        result = login_code_flow(second, "dave", second.passwords["dave"])
        assert result["tokens"]["expires_in"] == 120
        header = jwt.get_unverified_header(result["tokens"]["id_token"])
        assert header["kid"] == kids[0]
        verify_id_token(second, result["tokens"]["id_token"], result["nonce"])
