"""Forged ID tokens and user info from a man in the hub's back channel: every one is refused.

Each attack changes one thing in what the real provider answered, and the sign-in is then
delivered to the hub like a browser would.  Re-signing with the provider's *real* private key
shows that each claim check (issuer, audience, expiry, nonce) is effective by itself: the
signature is genuine, only that one claim is wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from security_support import Target

from continuum_federation.idp import OpenIDProvider
from fixtures.attacker import (
    DROP,
    BackChannelAttacker,
    _b64,
    decode,
    provider_signing_key,
    resign,
    rewrite_id_token,
    tamper,
    unsigned,
)
from fixtures.hub import api
from fixtures.idp import login_code_flow

pytestmark = [pytest.mark.integration, pytest.mark.security]

Forge = Callable[[str], str]
FORGERIES: dict[str, Callable[[OpenIDProvider, Any], Forge]] = {}


def forgery(name: str):
    """Register a forgery: ``make(idp, attacker_key) -> forge(id_token) -> forged token``."""

    def register(make: Callable[[OpenIDProvider, Any], Forge]):
        FORGERIES[name] = make
        return make

    return register


def real_key(idp: OpenIDProvider, **changes: Any) -> Forge:
    kid, key = provider_signing_key(idp)
    return lambda token: resign(token, key, kid=kid, **changes)


@forgery("forged signature (payload edited)")
def _edited(idp, key):
    return lambda token: tamper(token, amr=["mfa", "hwk"], auth_time=int(time.time()))


@forgery("alg none")
def _none(idp, key):
    return lambda token: unsigned(token)


@forgery("alg none without kid")
def _none_no_kid(idp, key):
    header = _b64(json.dumps({"alg": "none"}).encode())

    def forge(token: str) -> str:
        _, claims = decode(token)
        return f"{header}.{_b64(json.dumps(claims).encode())}."

    return forge


@forgery("HS256 keyed with the provider's public key")
def _confused(idp, key):
    public = (
        provider_signing_key(idp)[1]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def forge(token: str) -> str:
        header, claims = decode(token)
        signing_input = (
            f"{_b64(json.dumps({**header, 'alg': 'HS256'}).encode())}."
            f"{_b64(json.dumps(claims).encode())}"
        )
        mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"

    return forge


@forgery("wrong key under the provider's kid")
def _wrong_key(idp, key):
    kid, _ = provider_signing_key(idp)
    return lambda token: resign(token, key, kid=kid)


@forgery("wrong key under a new kid")
def _new_kid(idp, key):
    return lambda token: resign(token, key, kid="attacker-2026")


@forgery("wrong iss (real key)")
def _iss(idp, key):
    return real_key(idp, iss="http://127.0.0.1:9/attacker")


@forgery("wrong aud (real key)")
def _aud(idp, key):
    return real_key(idp, aud="another-client")


@forgery("azp of another client (real key)")
def _azp(idp, key):
    return real_key(idp, azp="another-client")


@forgery("extra aud without azp (real key)")
def _extra_aud(idp, key):
    def forge(token: str) -> str:
        _, claims = decode(token)
        return real_key(idp, aud=[claims["aud"], "another-client"], azp=DROP)(token)

    return forge


@forgery("expired (real key)")
def _expired(idp, key):
    now = int(time.time())
    return real_key(idp, iat=now - 7200, exp=now - 3600)


@forgery("issued in the future (real key)")
def _future(idp, key):
    now = int(time.time())
    return real_key(idp, iat=now + 3600, exp=now + 7200)


@forgery("nonce mismatch (real key)")
def _nonce(idp, key):
    return real_key(idp, nonce="attacker-chosen-nonce")


@forgery("nonce removed (real key)")
def _no_nonce(idp, key):
    return real_key(idp, nonce=DROP)


@pytest.mark.parametrize("attack", list(FORGERIES), ids=list(FORGERIES))
def test_forged_id_token_is_refused(
    attack: str, target: Target, attacker: BackChannelAttacker, attacker_key: Any, victim: str
) -> None:
    attacker.rewrite_tokens = rewrite_id_token(FORGERIES[attack](target.idp, attacker_key))
    browser, response = target.sign_in(victim)
    [exchange] = [e for e in attacker.exchanges if e.path == "/token"]
    assert exchange.delivered["id_token"] != exchange.upstream["id_token"]  # the attack happened
    target.refused(
        f"ID token: {attack}", response, browser, username=victim, secrets=attacker.secrets_seen()
    )


def test_replayed_id_token_of_another_sign_in_is_refused(
    target: Target, attacker: BackChannelAttacker, victim: str
) -> None:
    """A genuine, unexpired ID token of the same user and client, from another sign-in: only
    the nonce tells it apart."""
    idp = target.idp
    stolen = login_code_flow(idp, victim, idp.passwords[victim])["tokens"]["id_token"]
    attacker.rewrite_tokens = rewrite_id_token(lambda token: stolen)
    browser, response = target.sign_in(victim)
    [exchange] = [e for e in attacker.exchanges if e.path == "/token"]
    assert decode(exchange.upstream["id_token"])[1]["sub"] == decode(stolen)[1]["sub"]
    target.refused(
        "ID token: genuine token of another sign-in (nonce replay)",
        response,
        browser,
        username=victim,
        secrets=attacker.secrets_seen() | {stolen},
    )


def test_access_token_of_another_user_is_refused(
    target: Target, attacker: BackChannelAttacker, victim: str, other_victim: str
) -> None:
    """Token substitution: the victim's genuine ID token, but someone else's (genuine) access
    token, so that user info would describe that other person."""
    idp = target.idp
    other = login_code_flow(idp, other_victim, idp.passwords[other_victim])["tokens"]
    attacker.rewrite_tokens = lambda answer: {**answer, "access_token": other["access_token"]}
    browser, response = target.sign_in(victim)
    [info] = [e for e in attacker.exchanges if e.path == "/userinfo"]
    assert info.delivered and info.delivered["preferred_username"] == other_victim
    target.refused(
        "access token of another user (token substitution)",
        response,
        browser,
        username=victim,
        secrets=attacker.secrets_seen() | {other["access_token"]},
    )
    assert api(target.hub, "GET", f"/users/{other_victim}").status_code == 404


def test_response_without_id_token_is_refused(
    target: Target, attacker: BackChannelAttacker, victim: str
) -> None:
    attacker.rewrite_tokens = lambda answer: {k: v for k, v in answer.items() if k != "id_token"}
    browser, response = target.sign_in(victim)
    target.refused(
        "token response without ID token",
        response,
        browser,
        username=victim,
        secrets=attacker.secrets_seen(),
    )


def test_userinfo_of_another_subject_is_refused(
    target: Target, attacker: BackChannelAttacker, victim: str
) -> None:
    """The ID token is genuine; user info names another subject."""
    attacker.rewrite_userinfo = lambda info: {**info, "sub": "0" * 40}
    browser, response = target.sign_in(victim)
    assert any(e.path == "/userinfo" for e in attacker.exchanges)
    target.refused(
        "userinfo sub differs from the ID token's",
        response,
        browser,
        username=victim,
        secrets=attacker.secrets_seen(),
    )


def test_honest_back_channel_signs_in(
    target: Target, attacker: BackChannelAttacker, victim: str
) -> None:
    """The control: through the (honest) attacker's proxy, the same steps sign the user in."""
    browser, response = target.sign_in(victim)
    assert response.status_code == 302, response.text[:500]
    assert any(c.name == "jupyterhub-hub-login" for c in browser.cookies)
    assert [e.path for e in attacker.exchanges] == ["/token", "/userinfo"]


BROKEN_ANSWERS = {
    "token response not JSON": ("/token", 200, b"<html>hello</html>"),
    "token error answered with 200": ("/token", 200, b'{"error": "x", "error_description": "y"}'),
    "token endpoint fails (500)": ("/token", 500, b"oops"),
    "userinfo refused (401)": ("/userinfo", 401, b'{"error": "invalid_token"}'),
    "userinfo not JSON": ("/userinfo", 200, b"<html>hello</html>"),
    "userinfo a JSON list": ("/userinfo", 200, b"[]"),
}


@pytest.mark.parametrize("attack", list(BROKEN_ANSWERS), ids=list(BROKEN_ANSWERS))
def test_broken_back_channel_answer_is_refused_cleanly(
    attack: str, target: Target, attacker: BackChannelAttacker, victim: str
) -> None:
    """Garbage from the token or userinfo endpoint: a clear refusal, not a server error."""
    path, status, body = BROKEN_ANSWERS[attack]
    attacker.replace[path] = (status, body)
    browser, response = target.sign_in(victim)
    target.refused(
        f"broken answer: {attack}",
        response,
        browser,
        username=victim,
        secrets=attacker.secrets_seen(),
    )
