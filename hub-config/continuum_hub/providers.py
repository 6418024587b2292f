"""One OpenID provider the hub trusts for sign-in: :class:`OIDCProvider`.

A deployment may trust several identity proxies at once (EGI Check-in, a national AAI, a
project's INDIGO IAM).  Each is an :class:`OIDCProvider`: its issuer (whose discovery document
gives the endpoints and must name the same issuer), this hub's client registration there, the
name shown on the login button, and what the hub believes from it — the entitlement namespaces
and authorities it may assert, and whether its value of the linking claim (``voperson_id``)
identifies the same person as another provider's.

Providers are built by :class:`~continuum_hub.auth.FederatedAuthenticator` from its
``providers`` option (one dict of these traits per provider) with the authenticator as
parent, so ``c.OIDCProvider.<option>`` sets a default for all of them.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import Bool, Float, List, Unicode, default, validate
from traitlets.config import Configurable

from .idtoken import DEFAULT_ALGORITHMS, IDTokenError, IDTokenValidator

DISCOVERY_PATH = "/.well-known/openid-configuration"
NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
DEFAULT_SCOPE = ("openid", "profile", "email", "eduperson_entitlement", "offline_access")


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
    if not isinstance(doc, dict) or doc.get("issuer") != issuer:
        found = doc.get("issuer") if isinstance(doc, dict) else None
        raise DiscoveryError(f"discovery document at {url} names issuer {found!r}, not {issuer!r}")
    return doc


class OIDCProvider(Configurable):
    """An OpenID Connect provider (identity proxy) users may sign in with.

    Endpoints left empty come from the issuer's discovery document, fetched once at first use.
    """

    name = Unicode(
        config=True,
        help="""Short identifier of the provider (lowercase letters, digits, ``-``; at most 32).

        It names the provider's URLs (``/hub/oauth_login/<name>``, ``/hub/oauth_callback/<name>``),
        is kept in the user's ``auth_state`` and qualifies usernames that are already taken.""",
    )
    display_name = Unicode(
        config=True, help="Name on the login button (*Sign in with <display_name>*); default: name."
    )
    issuer = Unicode(
        config=True,
        help="OpenID issuer identifier; its discovery document must name exactly this issuer.",
    )
    client_id = Unicode(config=True, help="This hub's client ID at the provider.")
    client_secret = Unicode(
        config=True,
        help="This hub's client secret at the provider (prefer ``client_secret_file``).",
    )
    client_secret_file = Unicode(
        config=True,
        help="File holding the client secret (read at start; keep it 0600). Overrides "
        "``client_secret``.",
    )
    callback_url = Unicode(
        config=True,
        help="""Redirect URI registered at the provider.  Default: the authenticator's
        ``oauth_callback_url`` followed by ``/<name>`` (``https://hub/hub/oauth_callback/egi``);
        every provider must have its own (mix-up defence).""",
    )
    authorize_url = Unicode(config=True, help="Authorization endpoint; default from discovery.")
    token_url = Unicode(config=True, help="Token endpoint; default from discovery.")
    userdata_url = Unicode(config=True, help="Userinfo endpoint; default from discovery.")
    revocation_url = Unicode(
        config=True, help="Revocation endpoint (RFC 7009); default from discovery, may be empty."
    )
    scope = List(
        Unicode(),
        default_value=list(DEFAULT_SCOPE),
        config=True,
        help="Scopes requested at sign-in (default: openid profile email "
        "eduperson_entitlement offline_access).",
    )
    username_claim = Unicode(
        "preferred_username",
        config=True,
        help="Userinfo claim that suggests the hub username at a person's first sign-in "
        "(sanitized; qualified with the provider's name when taken).",
    )
    entitlement_claim = Unicode(
        "eduperson_entitlement",
        config=True,
        help="Userinfo claim holding the AARC-G069 group entitlements.",
    )
    trusted_namespaces = List(
        Unicode(),
        config=True,
        help="""Entitlement namespaces accepted from this provider, e.g. ``["mace:egi.eu"]``.

        Entitlements in any other namespace are ignored (and logged), so a provider cannot
        grant membership in groups it does not manage.  Empty (the default): none accepted.""",
    )
    trusted_authorities = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help="Entitlement authorities (after ``#``) accepted from this provider; ``None`` "
        "(the default) accepts any.",
    )
    link_claim = Unicode(
        "",
        config=True,
        help="""Userinfo claim that identifies a person across providers (``voperson_id``).

        When set, a person's first sign-in through this provider reuses the hub username of an
        identity (of any provider also trusted for this claim) with the same value.  Only set
        it for providers whose values are globally unique and verified.  Empty (the default):
        no linking.""",
    )
    reserved_usernames = List(
        Unicode(),
        config=True,
        help="""Usernames only this provider's users may be given as they are (e.g. the
        accounts of its institution's people): someone of another provider who suggests one
        of them gets a qualified name (``alice-partner``).  Default: none.""",
    )
    require_iss_in_response = Bool(
        None,
        allow_none=True,
        config=True,
        help="Require the ``iss`` parameter in the authorization response (RFC 9207).  "
        "``None`` (the default): when discovery says the provider sends it.",
    )
    discovery_timeout = Float(
        10.0, config=True, help="Seconds to wait for the discovery document (default 10)."
    )
    id_token_algorithms = List(
        Unicode(),
        default_value=list(DEFAULT_ALGORITHMS),
        config=True,
        help="ID token signature algorithms accepted (asymmetric only; ``none``/``HS*`` refused).",
    )
    id_token_leeway = Float(
        0.0, config=True, help="Seconds of clock skew tolerated for ``exp``/``iat`` (default 0)."
    )

    _discovery: dict[str, Any] | None = None
    _validator: IDTokenValidator | None = None

    @validate("name")
    def _check_name(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if not NAME_PATTERN.match(value):
            raise ValueError(f"provider name {value!r} must match {NAME_PATTERN.pattern}")
        return value

    @validate("issuer")
    def _check_issuer(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value and not value.startswith(("https://", "http://")):
            raise ValueError(f"issuer must be an http(s) URL, not {value!r}")
        return value

    @validate("id_token_algorithms")
    def _check_algorithms(self, proposal: dict[str, Any]) -> list[str]:
        unsafe = [a for a in proposal["value"] if a == "none" or a.upper().startswith("HS")]
        if unsafe or not proposal["value"]:
            raise ValueError(f"ID token algorithms must be asymmetric ones, not {unsafe or []}")
        return proposal["value"]

    @default("display_name")
    def _display_name_default(self) -> str:
        return self.name

    def check(self) -> None:
        """Raise ``ValueError`` when the provider cannot work (called by the authenticator)."""
        missing = [t for t in ("name", "issuer", "client_id") if not getattr(self, t)]
        if missing:
            raise ValueError(f"provider {self.name or '?'!r} lacks {', '.join(missing)}")
        if self.client_secret_file:
            try:
                secret = Path(self.client_secret_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"cannot read the client secret of {self.name}: {exc}") from exc
            self.client_secret = secret
        if not self.client_secret:
            raise ValueError(f"provider {self.name!r} has no client_secret(_file)")

    def discovery(self) -> dict[str, Any]:
        """The issuer's discovery document, fetched once and cached."""
        if self._discovery is None:
            if not self.issuer:
                raise DiscoveryError(f"provider {self.name!r}: no issuer to discover")
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

    @default("revocation_url")
    def _revocation_url_default(self) -> str:
        return str(self.discovery().get("revocation_endpoint") or "") if self.issuer else ""

    def iss_required(self) -> bool:
        """Whether authorization responses must carry ``iss`` (RFC 9207)."""
        if self.require_iss_in_response is not None:
            return bool(self.require_iss_in_response)
        return bool(self.issuer) and bool(
            self.discovery().get("authorization_response_iss_parameter_supported")
        )

    def id_token_validator(self) -> IDTokenValidator:
        """The validator of this provider's ID tokens (keys fetched at first use, refetched
        when a token names an unknown key)."""
        if self._validator is None:
            jwks_uri = str(self.discovery()["jwks_uri"])
            fetch = getattr(self.parent, "httpfetch", None)
            if fetch is None:
                raise RuntimeError("OIDCProvider needs the authenticator as parent")

            async def fetch_jwks() -> dict[str, Any]:
                return await fetch(jwks_uri, f"Fetching the keys of {self.name}...")

            self._validator = IDTokenValidator(
                self.discovery()["issuer"],
                self.client_id,
                fetch_jwks,
                algorithms=self.id_token_algorithms,
                leeway=self.id_token_leeway,
            )
        return self._validator

    async def validate_id_token(self, id_token: str, nonce: str | None = None) -> dict[str, Any]:
        """The claims of ``id_token`` once signature, ``iss``, ``aud``, ``azp``, ``exp``,
        ``iat`` (and ``nonce``, when given) check out.

        Raises
        ------
        IDTokenError
            With the reason (for logs).
        """
        return await self.id_token_validator().validate(id_token, nonce=nonce)

    async def _fetch_json(self, what: str, url: str, **request: Any) -> dict[str, Any]:
        """A JSON object from the provider; any other answer refuses the sign-in (403).

        The provider's error answers are logged by oauthenticator; tokens never are.
        """
        auth = self.parent
        try:
            answer = await auth.httpfetch(
                url, f"{what} at {self.name}", validate_cert=auth.validate_server_cert, **request
            )
        except HTTPClientError as exc:
            auth.log.warning("Sign-in refused: %s at %s answered %s", what, self.name, exc.code)
            raise web.HTTPError(403, "Your sign-in could not be completed.") from None
        except (OSError, ValueError) as exc:  # unreachable, or not JSON
            auth.log.warning("Sign-in refused: %s at %s: %s", what, self.name, type(exc).__name__)
            raise web.HTTPError(403, "Your sign-in could not be completed.") from None
        if not isinstance(answer, dict):
            auth.log.warning("Sign-in refused: %s at %s is not a JSON object", what, self.name)
            raise web.HTTPError(403, "Your sign-in could not be completed.")
        return answer

    async def request_tokens(self, params: dict[str, str]) -> dict[str, Any]:
        """POST ``params`` to the token endpoint with this hub's client credentials.

        Raises
        ------
        tornado.web.HTTPError
            403 when the provider refuses, answers nonsense or sends no access token.
        """
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": "JupyterHub",
        }
        body = dict(params)
        if self.parent.basic_auth:  # RFC 6749 §2.3.1: form-encode, then base64
            pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            body.update(client_id=self.client_id, client_secret=self.client_secret)
        token_info = await self._fetch_json(
            "token request",
            self.token_url,
            method="POST",
            headers=headers,
            body=urlencode(body).encode(),
        )
        token_type = token_info.get("token_type", "Bearer")
        if not isinstance(token_info.get("access_token"), str) or not isinstance(token_type, str):
            self.parent.log.warning("Sign-in refused: %s sent no access token", self.name)
            raise web.HTTPError(403, "The identity provider returned no access token.")
        return token_info

    async def userinfo(self, token_info: Mapping[str, Any]) -> dict[str, Any]:
        """The userinfo (a JSON object) for the token response's access token (else 403)."""
        headers = self.parent.build_userdata_request_headers(
            token_info["access_token"], token_info.get("token_type") or "Bearer"
        )
        return await self._fetch_json("userinfo", self.userdata_url, method="GET", headers=headers)

    def __repr__(self) -> str:
        return f"<OIDCProvider {self.name} {self.issuer}>"


def build_providers(
    parent: Any, primary: Mapping[str, Any] | None, others: Mapping[str, Mapping[str, Any]]
) -> dict[str, OIDCProvider]:
    """The providers by name, ``primary`` first, each checked.

    Raises
    ------
    ValueError
        When one is misconfigured, or two share a name or an issuer.
    """
    built: dict[str, OIDCProvider] = {}
    for name, settings in ([(primary["name"], primary)] if primary else []) + list(others.items()):
        if name in built:
            raise ValueError(f"provider name {name!r} is used twice")
        built[name] = OIDCProvider(parent=parent, **{**settings, "name": name})
    issuers = [p.issuer for p in built.values()]
    if len(set(issuers)) != len(issuers):
        raise ValueError("two providers have the same issuer")
    for provider in built.values():
        provider.check()
    return built


__all__ = ["DiscoveryError", "IDTokenError", "OIDCProvider", "build_providers", "fetch_discovery"]
