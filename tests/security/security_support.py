"""Helpers of the attack suite: drive a sign-in step by step and check that it was refused.

:func:`begin_login` plays the browser up to the provider's redirect back to the hub and stops
there, so that a test can tamper with the callback (or let the back-channel attacker tamper with
what the hub fetches) before :func:`finish_login` delivers it.  :func:`assert_refused` checks
everything a refusal must be: a 400/403 page with a message and no stack trace or token, no hub
cookie, nobody signed in, no user created; it returns what was observed for the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from continuum_hub.federation.hub import LocalHub
from continuum_hub.federation.idp import (
    ADMIN_GROUP,
    ENTITLEMENT_AUTHORITY,
    ENTITLEMENT_NAMESPACE,
    VO_HEP,
    OpenIDProvider,
    entitlement,
)
from fixtures.hub import api
from fixtures.idp import _FORM_ACTION, TIMEOUT, follow_to_redirect_uri

#: JupyterHub's login cookie; a session exists when a response sets it
LOGIN_COOKIE = "jupyterhub-hub-login"
#: what a stack trace on a page looks like
TRACE_MARKERS = ("Traceback", 'File "/', "site-packages")
_HEADING = re.compile(r"<h1>(.*?)</h1>", re.S | re.I)
_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.S | re.I)
_TAGS = re.compile(r"<[^>]+>")
#: log lines that say nothing about the attack: access log, tornado's summary, services
_NOISE = (" log:", " web:", "IdleCuller", "/hub/api/")


# --- the suite's providers and users ------------------------------------------------

VICTIMS = tuple(f"sec{number:02d}" for number in range(1, 81))
PRIMARY = "continuum"
PARTNER = "partner"
PARTNER_NAMESPACE = "urn:mace:partner.example"
PARTNER_AUTHORITY = "proxy.partner.example"
PARTNER_HEP = f"{PARTNER_NAMESPACE}:group:{VO_HEP}:role=member#{PARTNER_AUTHORITY}"
ADMIN_ENTITLEMENT = entitlement(ADMIN_GROUP)
#: entitlement-like strings for the admin group where the hub must not look, or must not trust
MALLORY = {
    "username": "mallory",
    "name": ADMIN_ENTITLEMENT,
    "given_name": ADMIN_GROUP,
    "family_name": f"{ADMIN_ENTITLEMENT} {ADMIN_GROUP}",
    "email": f"{ADMIN_GROUP}@continuum.example",
    "entitlements": [
        entitlement(VO_HEP),
        # the admin group in a namespace the hub does not trust …
        f"urn:mace:evil.example:group:{ADMIN_GROUP}:role=member#{ENTITLEMENT_AUTHORITY}",
        # … below the trusted one (a sub-namespace is another namespace) …
        f"{ENTITLEMENT_NAMESPACE}:evil:group:{ADMIN_GROUP}:role=member#{ENTITLEMENT_AUTHORITY}",
        # … from an authority it does not trust, without an authority, and as a bare name
        f"{ENTITLEMENT_NAMESPACE}:group:{ADMIN_GROUP}:role=member#evil.example",
        f"{ENTITLEMENT_NAMESPACE}:group:{ADMIN_GROUP}:role=member",
        ADMIN_GROUP,
    ],
}
#: provider logins that are system accounts of the sites (``preferred_username`` is often the
#: user's own choice at an identity provider)
SYSTEM_LOGINS = ("root", "slurm")
USERS = [
    *({"username": name, "entitlements": [entitlement(VO_HEP)]} for name in VICTIMS),
    *({"username": name, "entitlements": [entitlement(VO_HEP)]} for name in SYSTEM_LOGINS),
    MALLORY,
]
#: the partner's users: ``pat`` (HEP there), ``pat-admin`` (HEP there, and the admin group in
#: the *primary* provider's namespace, which the partner is not trusted for)
PARTNER_USERS = [
    {"username": "pat", "entitlements": [PARTNER_HEP]},
    {"username": "pat-admin", "entitlements": [PARTNER_HEP, ADMIN_ENTITLEMENT]},
]


def callback_prefix(hub: LocalHub) -> str:
    """Start of every callback URL of ``hub`` (``/hub/oauth_callback`` or ``…/<provider>``)."""
    return f"{hub.url}/hub/oauth_callback"


def provider_login(
    browser: requests.Session,
    response: requests.Response,
    idp: OpenIDProvider,
    username: str,
    stop_at: str,
) -> str:
    """From the redirect to the provider, sign ``username`` in and return the URL back."""
    outcome = follow_to_redirect_uri(browser, response, stop_at)
    if isinstance(outcome, requests.Response):
        form = _FORM_ACTION.search(outcome.text)
        assert form, f"no login form: {outcome.status_code} {outcome.url} {outcome.text[:300]}"
        posted = browser.post(
            urljoin(outcome.url, unescape(form.group(1))),
            data={"username": username, "password": idp.passwords[username]},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        outcome = follow_to_redirect_uri(browser, posted, stop_at)
    assert isinstance(outcome, str), (
        f"the provider did not send {username} back: {outcome.status_code} {outcome.text[:300]}"
    )
    return outcome


def begin_login(
    hub: LocalHub,
    idp: OpenIDProvider,
    username: str,
    *,
    login_path: str = "/hub/oauth_login",
    params: dict[str, str] | None = None,
    browser: requests.Session | None = None,
) -> tuple[requests.Session, str]:
    """Start signing in at the hub, sign in at the provider, stop before the callback.

    Returns
    -------
    The browser (its cookies hold the hub's OAuth state) and the callback URL, not yet visited.
    """
    browser = browser or requests.Session()
    response = browser.get(
        f"{hub.url}{login_path}", params=params, allow_redirects=False, timeout=TIMEOUT
    )
    assert response.is_redirect, f"no redirect to the provider: {response.status_code}"
    return browser, provider_login(browser, response, idp, username, callback_prefix(hub))


def finish_login(browser: requests.Session, callback_url: str) -> requests.Response:
    """Deliver the callback to the hub (its redirect, if any, is not followed)."""
    return browser.get(callback_url, allow_redirects=False, timeout=TIMEOUT)


def signed_in(hub: LocalHub, browser: requests.Session) -> bool:
    """Whether ``browser``'s cookies open the hub's home page."""
    response = browser.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=TIMEOUT)
    return response.status_code == 200


def _text(html: str) -> str:
    return " ".join(unescape(_TAGS.sub(" ", html)).split())


def page_message(response: requests.Response) -> str:
    """The text of the hub's error page: its heading, and its message when that differs."""
    heading = _HEADING.search(response.text)
    paragraph = _PARAGRAPH.search(response.text)
    title = _text(heading.group(1)) if heading else ""
    detail = _text(paragraph.group(1)) if paragraph else ""
    if not title:
        return detail
    return title if not detail or title.endswith(detail) else f"{title} — {detail}"


class LogWatch:
    """The lines a log file gained since this object was made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def text(self) -> str:
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            handle.seek(self.offset)
            return handle.read()

    def lines(self, *needles: str) -> list[str]:
        """New lines containing any of ``needles`` (all new lines without needles)."""
        return [
            line.strip()
            for line in self.text().splitlines()
            if not needles or any(needle in line for needle in needles)
        ]


@dataclass
class Observation:
    """What one refused attack looked like (for the issue's closing note)."""

    attack: str
    status: int
    message: str
    log_line: str


def assert_refused(
    attack: str,
    response: requests.Response,
    browser: requests.Session,
    hub: LocalHub,
    log: LogWatch,
    *,
    username: str | None,
    secrets: set[str],
    user_may_exist: bool = False,
    browser_signed_in: bool = False,
) -> Observation:
    """Assert a clean refusal of ``attack`` and return what was seen.

    Parameters
    ----------
    response
        The hub's answer to the attacked callback.
    browser
        The attacker's (or victim's) cookies.
    username
        The user who must not be signed in (nor created, unless ``user_may_exist``).
    browser_signed_in
        ``browser`` was signed in before the attack (its victim's own session): it must not
        get a new login cookie, and stays signed in.
    secrets
        Token values and codes that must appear neither on the page nor in the hub's log.
    """
    assert response.status_code in (400, 403), (
        f"{attack}: expected a refusal, got {response.status_code} "
        f"{response.headers.get('Location', '')}\n{log.text()[-3000:]}"
    )
    body = response.text
    message = page_message(response)
    assert message, f"{attack}: the error page says nothing"
    for marker in TRACE_MARKERS:
        assert marker not in body, f"{attack}: stack trace on the error page"
    log_text = log.text()
    for secret in secrets:
        assert secret not in body, f"{attack}: a token or code is echoed on the page"
        assert secret not in log_text, (
            f"{attack}: a token or code is in the hub's log: "
            + "\n".join(line for line in log_text.splitlines() if secret in line)
        )
    lines = log.lines("[W ", "[E ")
    summary = next((line for line in lines if " web:" in line), "")
    relevant = [line for line in lines if not any(n in line for n in _NOISE)]
    reason = next((line for line in relevant if "refused" in line), "")
    reason = reason or next(iter(relevant), summary)
    assert LOGIN_COOKIE not in response.cookies, f"{attack}: the hub set its login cookie"
    if not browser_signed_in:
        assert not any(c.name == LOGIN_COOKIE for c in browser.cookies), (
            f"{attack}: the browser holds a hub login cookie"
        )
        assert not signed_in(hub, browser), f"{attack}: the browser is signed in"
    if username is not None and not user_may_exist:
        answer = api(hub, "GET", f"/users/{username}")
        assert answer.status_code == 404, f"{attack}: user {username} exists: {answer.text}"
    return Observation(attack, response.status_code, message, _short(reason))


def _short(line: str) -> str:
    """A log line without its timestamp prefix's milliseconds noise (kept readable)."""
    return re.sub(r"^\[(\w) [\d-]+ [\d:.]+ ", r"[\1 ", line)


def user_model(hub: LocalHub, username: str) -> dict[str, Any]:
    """The hub's model of ``username`` (fails when there is none)."""
    response = api(hub, "GET", f"/users/{username}")
    assert response.status_code == 200, response.text
    return dict(response.json())
