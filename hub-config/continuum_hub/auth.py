"""``continuum-oidc``: sign-in through an eduGAIN-style OpenID Connect proxy.

:class:`FederatedAuthenticator` is oauthenticator's ``GenericOAuthenticator`` plus three things:

* endpoints from the issuer's discovery document (``/.well-known/openid-configuration``), whose
  ``issuer`` must equal the configured one;
* ``eduperson_entitlement`` values parsed per AARC-G069, filtered to trusted namespaces and
  authorities, and turned into hub-managed JupyterHub groups (``manage_groups``), which gate
  login (``allowed_groups``), admin rights (``admin_groups``) and site access;
* strict validation of the ID token (signature against the issuer's keys, ``iss``, ``aud``,
  ``azp``, ``exp``, ``iat``) and a userinfo ``sub`` equal to the ID token's;
* defaults suited to research AAI proxies (scopes, username claim, POSIX-safe usernames).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import Float, List, Unicode, default

from .entitlements import group_name, trusted_entitlements
from .idtoken import DEFAULT_ALGORITHMS, IDTokenError, IDTokenValidator

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

    id_token_algorithms = List(
        Unicode(),
        default_value=list(DEFAULT_ALGORITHMS),
        config=True,
        help="""Signature algorithms accepted for ID tokens (asymmetric only; ``none`` and
        ``HS*`` are refused at start-up).""",
    )

    id_token_leeway = Float(
        0.0,
        config=True,
        help="Seconds of clock skew tolerated when checking an ID token's ``exp`` and ``iat``.",
    )

    _discovery: dict[str, Any] | None = None
    _validator: IDTokenValidator | None = None

    def id_token_validator(self) -> IDTokenValidator:
        """The validator of this issuer's ID tokens (keys fetched on first use)."""
        if self._validator is None:
            jwks_uri = str(self.discovery()["jwks_uri"])

            async def fetch_jwks() -> dict[str, Any]:
                return await self.httpfetch(jwks_uri, "Fetching the issuer's keys...")

            self._validator = IDTokenValidator(
                self.discovery()["issuer"],
                self.client_id,
                fetch_jwks,
                algorithms=self.id_token_algorithms,
                leeway=self.id_token_leeway,
            )
        return self._validator

    async def get_token_info(self, handler: Any, params: dict[str, Any]) -> dict[str, Any]:
        """The token response; a sign-in must come with an ID token."""
        token_info = await super().get_token_info(handler, params)
        if params.get("grant_type") == "authorization_code" and not token_info.get("id_token"):
            self.log.warning("Sign-in refused: %s returned no ID token", self.issuer)
            raise web.HTTPError(403, "The identity provider did not prove who you are.")
        return token_info

    async def token_to_user(self, token_info: dict[str, Any]) -> dict[str, Any]:
        """Userinfo, after the ID token (when there is one) has been validated; both must name
        the same subject."""
        claims = None
        if token_info.get("id_token"):
            try:
                claims = await self.id_token_validator().validate(token_info["id_token"])
            except IDTokenError as exc:
                self.log.warning("Sign-in refused: invalid ID token from %s: %s", self.issuer, exc)
                raise web.HTTPError(403, "Your sign-in could not be verified.") from None
        user_info = await super().token_to_user(token_info)
        if claims is not None and user_info.get("sub") != claims["sub"]:
            self.log.warning("Sign-in refused: userinfo subject differs from the ID token's")
            raise web.HTTPError(403, "Your sign-in could not be verified.")
        return user_info

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
