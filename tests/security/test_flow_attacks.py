"""Attacks on the browser's side of sign-in: the OAuth state and replayed authorization codes.

The state binds the callback to the browser that started the sign-in (login CSRF, session
swapping); the code is single-use, and the provider revokes what was issued for a code that is
played twice (RFC 6749 §4.1.2).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from security_support import LOGIN_COOKIE, Target, signed_in

from continuum_federation.hub import LocalHub
from fixtures.attacker import BackChannelAttacker
from fixtures.hub import begin_login, finish_login
from fixtures.idp import TIMEOUT, refresh_tokens, userinfo

pytestmark = [pytest.mark.integration, pytest.mark.security]


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def with_params(url: str, **changes: str | None) -> str:
    """``url`` with query parameters changed (``None`` removes one)."""
    parts = urlsplit(url)
    params = {**dict(parse_qsl(parts.query)), **changes}
    return parts._replace(
        query=urlencode({k: v for k, v in params.items() if v is not None})
    ).geturl()


def fresh_state(hub: LocalHub) -> str:
    """The ``state`` of a sign-in another browser (the attacker's) starts at the hub."""
    response = requests.get(f"{hub.url}/hub/oauth_login", allow_redirects=False, timeout=TIMEOUT)
    return query(response.headers["Location"])["state"]


def forged_state() -> str:
    return base64.urlsafe_b64encode(json.dumps({"state_id": "0" * 32}).encode()).decode()


@pytest.mark.parametrize(
    ("attack", "tamper"),
    [
        ("state mismatch: state of another sign-in", lambda hub: {"state": fresh_state(hub)}),
        ("state mismatch: forged state", lambda hub: {"state": forged_state()}),
        ("state missing from the callback", lambda hub: {"state": None}),
    ],
    ids=["other-sign-in", "forged", "missing"],
)
def test_callback_with_wrong_state_is_refused(
    attack: str, tamper, target: Target, attacker: BackChannelAttacker, victim: str
) -> None:
    browser, callback = begin_login(target.hub, target.idp, victim)
    response = finish_login(browser, with_params(callback, **tamper(target.hub)))
    assert not attacker.exchanges, "the code was redeemed before the state was checked"
    code = query(callback)["code"]
    target.refused(attack, response, browser, username=victim, secrets={code})


def test_callback_in_another_browser_is_refused(
    target: Target, attacker: BackChannelAttacker, victim: str
) -> None:
    """Login CSRF: the attacker signs in as themselves and makes the victim's browser (which
    has no state cookie for it) open the callback."""
    _, callback = begin_login(target.hub, target.idp, victim)
    other_browser = requests.Session()
    response = finish_login(other_browser, callback)
    assert not attacker.exchanges
    target.refused(
        "state missing from cookies (callback in another browser, login CSRF)",
        response,
        other_browser,
        username=victim,
        secrets={query(callback)["code"]},
    )


def test_code_replayed_with_captured_cookies_is_refused_and_revokes_the_tokens(
    target: Target, attacker: BackChannelAttacker, victim: str
) -> None:
    """Someone who captured the whole callback request (URL and cookies) plays it again after
    the victim: the provider refuses the used code and revokes the first exchange's tokens."""
    hub, idp = target.hub, target.idp
    browser, callback = begin_login(hub, idp, victim)
    replayer = requests.Session()
    replayer.cookies.update(browser.cookies.copy())  # the state cookie, as the victim had it
    first = finish_login(browser, callback)
    assert first.status_code == 302 and signed_in(hub, browser), first.text[:300]
    issued = attacker.exchanges[0].upstream
    assert issued and issued.get("access_token")
    assert userinfo(idp, issued["access_token"]).status_code == 200

    response = finish_login(replayer, callback)
    token_calls = [e for e in attacker.exchanges if e.path == "/token"]
    assert len(token_calls) == 2 and token_calls[1].status == 400  # the provider said no
    assert token_calls[1].upstream.get("error") == "invalid_grant"
    target.refused(
        "code replay with the captured cookies",
        response,
        replayer,
        username=victim,
        user_may_exist=True,
        secrets=attacker.secrets_seen(),
    )
    # oidc-provider revokes the grant of a code used twice: the first tokens die with it
    assert userinfo(idp, issued["access_token"]).status_code == 401
    refreshed = refresh_tokens(idp, issued["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


def test_code_replayed_in_other_browsers_is_refused(
    target: Target, attacker: BackChannelAttacker, victim: str
) -> None:
    """The callback URL alone (from a log, a referrer, the history) is worth nothing: replayed
    by the victim's own browser or a fresh one, it never reaches the token endpoint."""
    browser, callback = begin_login(target.hub, target.idp, victim)
    assert finish_login(browser, callback).status_code == 302
    login_cookie = browser.cookies.get(LOGIN_COOKIE)

    again = finish_login(browser, callback)
    assert not again.cookies.get(LOGIN_COOKIE)
    target.refused(
        "code replay in the victim's browser (state cookie used up)",
        again,
        browser,
        username=victim,
        user_may_exist=True,
        browser_signed_in=True,
        secrets=attacker.secrets_seen(),
    )
    assert browser.cookies.get(LOGIN_COOKIE) == login_cookie  # the victim's session is intact

    stranger = requests.Session()
    response = finish_login(stranger, callback)
    target.refused(
        "code replay from a fresh browser",
        response,
        stranger,
        username=victim,
        user_may_exist=True,
        secrets=attacker.secrets_seen(),
    )
    assert len([e for e in attacker.exchanges if e.path == "/token"]) == 1


def test_error_description_in_the_callback_is_not_shown(target: Target) -> None:
    """Anyone can make a link to the callback with an ``error`` (as a provider sends when
    sign-in fails) and a description of their choosing: the hub's page shows neither that
    text nor markup, and the log gets it quoted on one line (no forged log lines)."""
    forged_line = "[W 2026-11-21 00:00:00.000 JupyterHub auth:1] Sign-in of dave accepted"
    description = f'Call +1 555 0100 <script>document.title="owned"</script>\n{forged_line}'
    browser = requests.Session()
    response = browser.get(
        f"{target.hub.url}/hub/oauth_callback",
        params={"error": "access_denied", "error_description": description},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert "555 0100" not in response.text and "<script>document" not in response.text
    assert not any(line.startswith(forged_line) for line in target.log.text().splitlines())
    target.refused(
        "provider error with a text and markup of the attacker's choosing",
        response,
        browser,
        username=None,
        secrets=set(),
    )
