"""``continuum-oidc``: sign-in through an eduGAIN-style OpenID Connect proxy.

:class:`FederatedAuthenticator` is oauthenticator's ``GenericOAuthenticator`` plus three things:

* endpoints from the issuer's discovery document (``/.well-known/openid-configuration``), whose
  ``issuer`` must equal the configured one;
* ``eduperson_entitlement`` values parsed per AARC-G069, filtered to trusted namespaces and
  authorities, and turned into hub-managed JupyterHub groups (``manage_groups``), which gate
  login (``allowed_groups``), admin rights (``admin_groups``) and site access;
* defaults suited to research AAI proxies (scopes, username claim, POSIX-safe usernames).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from traitlets import Float, List, Unicode, default

from .entitlements import group_name, trusted_entitlements

DISCOVERY_PATH = "/.well-known/openid-configuration"


class DiscoveryError(RuntimeError):
    """The issuer's discovery document is missing or inconsistent."""


def fetch_discovery(issuer: str, timeout: float) -> dict[str, Any]:
    """Fetch and check an OpenID provider's discovery document.

    Parameters
    ----------
    issuer
        The issuer identifier, e.g. ``https://aai.egi.eu/auth/realms/egi``.
    timeout
        Seconds to wait for the provider.

    Raises
    ------
    DiscoveryError
        When the document cannot be read or names another issuer (mix-up defence).
    """
    url = issuer.rstrip("/") + DISCOVERY_PATH
    if not url.startswith(("https://", "http://")):
        raise DiscoveryError(f"issuer must be an http(s) URL, not {issuer!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - checked
            doc = json.load(response)
    except (OSError, ValueError) as exc:
        raise DiscoveryError(f"cannot read the discovery document at {url}: {exc}") from exc
    if doc.get("issuer") != issuer:
        raise DiscoveryError(
            f"discovery document at {url} names issuer {doc.get('issuer')!r}, expected {issuer!r}"
        )
    return doc


class FederatedAuthenticator(GenericOAuthenticator):
    """Sign users in through one OpenID Connect identity proxy (EGI Check-in, INDIGO IAM, …).

    Configure ``issuer``, ``client_id``, ``client_secret`` and ``trusted_namespaces``; the
    endpoints come from discovery.  Entitlements become JupyterHub groups named after the
    group path (``vo.example.org``, ``vo.example.org:analysis``; non-member roles as
    ``vo.example.org#manager``).
    """

    issuer = Unicode(
        config=True,
        help="""OpenID issuer identifier of the identity proxy.

        Its discovery document provides ``authorize_url``, ``token_url`` and ``userdata_url``
        unless those are set explicitly.  The document's ``issuer`` must equal this value.
        """,
    )

    discovery_timeout = Float(
        10.0,
        config=True,
        help="Seconds to wait for the issuer's discovery document (fetched once, at first use).",
    )

    entitlement_claim = Unicode(
        "eduperson_entitlement",
        config=True,
        help="Userinfo claim holding the AARC-G069 group entitlements.",
    )

    trusted_namespaces = List(
        Unicode(),
        config=True,
        help="""Entitlement namespaces accepted from this issuer, e.g. ``["mace:egi.eu"]``.

        Entitlements in any other namespace are ignored (and logged), so a proxy cannot grant
        membership in groups it does not manage.  Empty (the default) ignores all entitlements.
        """,
    )

    trusted_authorities = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help="""Entitlement authorities (the part after ``#``) accepted from this issuer.

        ``None`` (the default) accepts any authority; a list accepts only those named.
        """,
    )

    _discovery: dict[str, Any] | None = None

    def discovery(self) -> dict[str, Any]:
        """The issuer's discovery document, fetched once and cached."""
        if self._discovery is None:
            if not self.issuer:
                raise DiscoveryError(
                    "FederatedAuthenticator.issuer is not set "
                    "(or set authorize_url, token_url and userdata_url)"
                )
            self._discovery = fetch_discovery(self.issuer, self.discovery_timeout)
        return self._discovery

    @default("authorize_url")
    def _authorize_url_default(self) -> str:
        return str(self.discovery()["authorization_endpoint"])

    @default("token_url")
    def _token_url_default(self) -> str:
        return str(self.discovery()["token_endpoint"])

    @default("userdata_url")
    def _userdata_url_default(self) -> str:
        return str(self.discovery()["userinfo_endpoint"])

    @default("scope")
    def _scope_default(self) -> list[str]:
        return ["openid", "profile", "email", "eduperson_entitlement", "offline_access"]

    @default("username_claim")
    def _username_claim_default(self) -> str:
        return "preferred_username"

    @default("username_pattern")
    def _username_pattern_default(self) -> str:
        # usernames become POSIX account names on the sites
        return r"^[a-z_][a-z0-9_-]{0,31}$"

    @default("manage_groups")
    def _manage_groups_default(self) -> bool:
        return True

    @default("login_service")
    def _login_service_default(self) -> str:
        return "your institution"

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """Groups from the trusted entitlements in the userinfo response."""
        user_info = auth_state.get(self.user_auth_state_key) or {}
        values = user_info.get(self.entitlement_claim) or []
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list):
            self.log.warning("Ignoring %s claim that is not a list", self.entitlement_claim)
            return set()
        accepted, rejected = trusted_entitlements(
            values, self.trusted_namespaces, self.trusted_authorities
        )
        for reason in rejected:
            self.log.warning("Ignoring entitlement from %s: %s", self.issuer, reason)
        return {group_name(ent) for ent in accepted}
