"""Helpers of the attack suite: drive a sign-in step by step and check that it was refused.

:func:`fixtures.hub.begin_login` plays the browser up to the provider's redirect back to the
hub and stops there, so that a test can tamper with the callback (or let the back-channel
attacker tamper with what the hub fetches) before :func:`fixtures.hub.finish_login` delivers
it.  :func:`assert_refused` checks everything a refusal must be: a 400/403 page with a message
and no stack trace or token, no hub cookie, nobody signed in, no user created; it returns what
was observed for the report.  :class:`Target` (fixture ``target``) binds both to the suite's
hub, the test's log and the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import requests

from continuum_federation.hub import LocalHub
from continuum_federation.idp import (
    ADMIN_GROUP,
    ENTITLEMENT_AUTHORITY,
    ENTITLEMENT_NAMESPACE,
    VO_HEP,
    OpenIDProvider,
    entitlement,
)
from fixtures.hub import api, begin_login, finish_login
from fixtures.idp import TIMEOUT

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


@dataclass
class Target:
    """The hub under attack in one test (fixture ``target``): the suite's hub and primary
    provider, the hub's log from the start of the test, and the attack report."""

    hub: LocalHub
    idp: OpenIDProvider
    log: LogWatch
    report: list[Observation]

    def sign_in(
        self, username: str, idp: OpenIDProvider | None = None, **login: Any
    ) -> tuple[requests.Session, requests.Response]:
        """Sign ``username`` in at ``idp`` (the primary provider) like a browser would:
        :func:`~fixtures.hub.begin_login` (``login``: its keyword arguments), then deliver the
        callback.  Returns the browser and the hub's answer to the callback."""
        browser, callback = begin_login(self.hub, idp or self.idp, username, **login)
        return browser, finish_login(browser, callback)

    def refused(
        self, attack: str, response: requests.Response, browser: requests.Session, **checks: Any
    ) -> Observation:
        """:func:`assert_refused` on this hub and log (``checks``: its keyword arguments); what
        was observed goes into the attack report."""
        observation = assert_refused(attack, response, browser, self.hub, self.log, **checks)
        self.report.append(observation)
        return observation
