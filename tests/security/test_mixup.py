"""Issuer mix-up between the hub's two providers (RFC 9207 §1; OAuth 2.0 Security BCP §4.4).

The user starts signing in with the ``partner`` provider, which is the attacker's: instead of
authenticating, it sends the browser on to the honest ``continuum`` provider with the hub's
client there and the hub's own state, nonce and PKCE challenge.  The victim signs in at the
honest provider, whose answer (code, state, ``iss``) then reaches the hub either at the honest
provider's redirect URI, or (relayed by the attacker) at the partner's.  Either way the hub must
refuse before redeeming the code anywhere, least of all at the attacker's token endpoint.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from security_support import PARTNER, Target, signed_in

from continuum_federation.hub import LocalHub
from continuum_federation.idp import OpenIDProvider
from fixtures.attacker import (
    BackChannelAttacker,
    decode,
    provider_signing_key,
    resign,
    rewrite_id_token,
)
from fixtures.hub import begin_login, callback_prefix, finish_login
from fixtures.idp import TIMEOUT, login_code_flow, sign_in_at_provider

pytestmark = [pytest.mark.integration, pytest.mark.security]

#: parameters of the hub's authorization request that the attacker passes on unchanged
FORWARDED = ("scope", "state", "nonce", "code_challenge", "code_challenge_method")


def mixed_up_callback(
    hub: LocalHub, honest: OpenIDProvider, username: str
) -> tuple[requests.Session, str]:
    """Start at the partner (the attacker), get sent to the honest provider, sign in there;
    return the browser and the honest provider's answer (not yet delivered)."""
    browser = requests.Session()
    start = browser.get(
        f"{hub.url}/hub/oauth_login/{PARTNER}", allow_redirects=False, timeout=TIMEOUT
    )
    assert start.is_redirect, start.text[:300]
    request = dict(parse_qsl(urlsplit(start.headers["Location"]).query))
    assert request["redirect_uri"].endswith(f"/oauth_callback/{PARTNER}")
    honest_request = {
        "client_id": honest.client_id,
        "redirect_uri": honest.redirect_uri,
        "response_type": "code",
        **{name: request[name] for name in FORWARDED},
    }
    to_honest = browser.get(
        f"{honest.metadata()['authorization_endpoint']}?{urlencode(honest_request)}",
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    password = honest.passwords[username]
    callback = sign_in_at_provider(browser, to_honest, username, password, callback_prefix(hub))
    answer = dict(parse_qsl(urlsplit(callback).query))
    assert answer["iss"] == honest.issuer and answer["state"] == request["state"]
    return browser, callback


def test_honest_answer_at_its_own_callback_for_a_partner_sign_in_is_refused(
    target: Target, attacker: BackChannelAttacker, attacker2: BackChannelAttacker, victim: str
) -> None:
    browser, callback = mixed_up_callback(target.hub, target.idp, victim)
    assert urlsplit(callback).path == "/hub/oauth_callback"
    response = finish_login(browser, callback)
    assert not attacker.exchanges and not attacker2.exchanges, "a code was redeemed"
    target.refused(
        "mix-up: honest provider's answer to a sign-in started at the partner",
        response,
        browser,
        username=victim,
        secrets={dict(parse_qsl(urlsplit(callback).query))["code"]},
    )


@pytest.mark.parametrize(
    ("attack", "iss"),
    [
        ("mix-up: honest answer relayed to the partner's callback", "keep"),
        ("mix-up: honest answer relayed to the partner's callback, iss removed", None),
    ],
    ids=["with-iss", "iss-removed"],
)
def test_honest_answer_relayed_to_the_partner_callback_is_refused(
    attack: str,
    iss: str | None,
    target: Target,
    attacker: BackChannelAttacker,
    attacker2: BackChannelAttacker,
    victim: str,
) -> None:
    """The code must never reach the partner's (the attacker's) token endpoint."""
    browser, callback = mixed_up_callback(target.hub, target.idp, victim)
    parts = urlsplit(callback)
    params = dict(parse_qsl(parts.query))
    if iss is None:
        del params["iss"]
    relayed = parts._replace(path=f"/hub/oauth_callback/{PARTNER}", query=urlencode(params))
    response = finish_login(browser, relayed.geturl())
    assert not attacker2.exchanges, "the honest provider's code went to the attacker"
    assert not attacker.exchanges
    target.refused(attack, response, browser, username=victim, secrets={params["code"]})


def test_partner_sign_in_works(
    target: Target, sec_idp2: OpenIDProvider, attacker2: BackChannelAttacker
) -> None:
    """The control: the partner's own user signs in through the partner, honestly."""
    browser, callback = begin_login(target.hub, sec_idp2, "pat", provider=PARTNER)
    assert urlsplit(callback).path == f"/hub/oauth_callback/{PARTNER}"
    response = finish_login(browser, callback)
    assert response.status_code == 302, response.text[:500]
    assert signed_in(target.hub, browser)
    assert [e.path for e in attacker2.exchanges] == ["/token", "/userinfo"]


def test_partner_token_claiming_the_primary_issuer_is_refused(
    target: Target, sec_idp2: OpenIDProvider, attacker2: BackChannelAttacker, victim: str
) -> None:
    """A malicious partner signs, with its own genuine key, an ID token that claims to come
    from the primary provider and names the victim's subject there (and says so in userinfo
    too): the victim's account must not open."""
    primary = target.idp
    sign_in_victim = login_code_flow(primary, victim, primary.passwords[victim])
    victim_sub = decode(sign_in_victim["tokens"]["id_token"])[1]["sub"]
    kid, key = provider_signing_key(sec_idp2)
    attacker2.rewrite_tokens = rewrite_id_token(
        lambda token: resign(token, key, kid=kid, iss=primary.issuer, sub=victim_sub)
    )
    attacker2.rewrite_userinfo = lambda info: {
        **info,
        "sub": victim_sub,
        "preferred_username": victim,
    }
    browser, response = target.sign_in("pat", sec_idp2, provider=PARTNER)
    assert any(e.path == "/token" and e.delivered for e in attacker2.exchanges)
    target.refused(
        "mix-up: partner's token (its real key) claiming the primary issuer and a victim",
        response,
        browser,
        username=victim,
        secrets=attacker2.secrets_seen(),
    )


def test_partner_token_in_a_primary_sign_in_is_refused(
    target: Target, sec_idp2: OpenIDProvider, attacker: BackChannelAttacker, victim: str
) -> None:
    """The primary sign-in's ID token swapped for one the partner signed (with the primary's
    issuer, audience and nonce): the partner's key is no key of the primary's."""
    kid, key = provider_signing_key(sec_idp2)
    attacker.rewrite_tokens = rewrite_id_token(lambda token: resign(token, key, kid=kid))
    browser, response = target.sign_in(victim)
    target.refused(
        "mix-up: primary sign-in with an ID token signed by the partner",
        response,
        browser,
        username=victim,
        secrets=attacker.secrets_seen(),
    )
