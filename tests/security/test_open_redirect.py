"""Open redirects through ``next``: after signing in, the browser stays on the hub.

The attacker's site is the back-channel attacker's own server (another port on 127.0.0.1), so a
browser that went there would show up in its visits.  Each payload is tried as a person would
meet it, in Chromium: a link to the hub's login page carrying ``next``, the provider's login,
and wherever the redirects lead; then again with the person already signed in.  The hub's
``Location`` after the callback is also checked as such: a path on the hub, never an address
a browser could read as another host (``//host``, ``/\\host``).
"""

from __future__ import annotations

from urllib.parse import quote, urljoin, urlsplit

import pytest
from playwright.sync_api import Page
from security_support import PRIMARY, LogWatch, Observation

from continuum_federation.hub import LocalHub
from continuum_federation.idp import OpenIDProvider
from fixtures.attacker import BackChannelAttacker
from fixtures.hub import begin_login, finish_login

pytestmark = [
    pytest.mark.integration,
    pytest.mark.security,
    pytest.mark.browser,
    pytest.mark.slow,
]

#: ``next`` values, ``{evil}`` standing for the attacker's ``host:port``
PAYLOADS = {
    "absolute URL": "http://{evil}/landing",
    "scheme-relative": "//{evil}/landing",
    "backslash": "/\\{evil}/landing",
    "two backslashes": "\\\\{evil}/landing",
    "slash backslash slash": "/\\/{evil}/landing",
    "three slashes": "///{evil}/landing",
    "dot segment": "/.//{evil}/landing",
    "scheme without slashes": "http:{evil}/landing",
    "leading tab": "\t//{evil}/landing",
    "tab inside": "/\t/{evil}/landing",
    "newline inside": "/\n/{evil}/landing",
    "encoded slashes": "%2F%2F{evil}/landing",
    "javascript URL": "javascript:alert(document.domain)//",
}


def on_hub(hub: LocalHub, url: str) -> bool:
    return urlsplit(url).netloc == urlsplit(hub.url).netloc


def settle(page: Page, idp: OpenIDProvider) -> None:
    """Wait until the redirects after the provider's login have come to rest."""
    page.wait_for_url(lambda url: not url.startswith(idp.issuer))
    page.wait_for_load_state("load")


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_next_never_leaves_the_hub(
    payload: str,
    sec_hub: LocalHub,
    sec_idp: OpenIDProvider,
    attacker: BackChannelAttacker,
    victim: str,
    page: Page,
    hub_log: LogWatch,
    attack_report: list[Observation],
) -> None:
    evil = urlsplit(attacker.url).netloc
    next_url = payload.format(evil=evil)
    name = next(key for key, value in PAYLOADS.items() if value == payload)

    # the hub's answer itself: a path on the hub
    browser, callback = begin_login(sec_hub, sec_idp, victim, params={"next": next_url})
    response = finish_login(browser, callback)
    assert response.status_code == 302, response.text[:300]
    location = response.headers["Location"]
    assert location.startswith("/") and location[1:2] not in ("/", "\\"), location
    assert on_hub(sec_hub, urljoin(callback, location)), location

    # a person following a link with that next, then again once signed in
    page.goto(f"{sec_hub.url}/hub/login?next={quote(next_url, safe='')}")
    page.locator(f'a.provider-login[data-provider="{PRIMARY}"]').click()
    page.get_by_label("Username").fill(victim)
    page.get_by_label("Password").fill(sec_idp.passwords[victim])
    page.get_by_role("button", name="Sign in").click()
    settle(page, sec_idp)
    landed = page.url
    assert on_hub(sec_hub, landed), f"signed in, the browser went to {landed}"
    for entry in ("login", "oauth_login"):
        page.goto(f"{sec_hub.url}/hub/{entry}?next={quote(next_url, safe='')}")
        settle(page, sec_idp)
        assert on_hub(sec_hub, page.url), f"{entry}: the browser went to {page.url}"
    assert not attacker.visits, f"the attacker's site was visited: {attacker.visits}"
    attack_report.append(
        Observation(
            f"open redirect via next: {name} ({next_url!r})",
            response.status_code,
            f"signed in; Location {location}; Chromium lands on {urlsplit(landed).path}",
            "(none: sign-in succeeds, next reduced to a path on the hub)",
        )
    )
