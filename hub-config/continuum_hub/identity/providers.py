"""One OpenID provider the hub trusts for sign-in: :class:`OIDCProvider`, the only code that
talks to a provider.

A deployment may trust several identity proxies at once (EGI Check-in, a national AAI, a
project's INDIGO IAM).  Each is an :class:`OIDCProvider`: its issuer (whose discovery document
gives the endpoints and must name the same issuer), this hub's client registration there, the
name shown on the login button, and what the hub believes from it — the entitlement namespaces
and authorities it may assert, and whether its value of the linking claim (``voperson_id``)
identifies the same person as another provider's (options: :mod:`.provider_options`).

Every request to a provider goes through it: discovery, the keys (JWKS), the code grant, the
refresh grant, userinfo and revocation.  Whatever goes wrong is raised as one of the typed
errors of :mod:`.errors`; sign-in and the refresher each decide what that means for them.

Providers are built by :class:`~continuum_hub.identity.auth.FederatedAuthenticator` from its
``providers`` option (one dict of these traits per provider) with the authenticator as
parent, so ``c.OIDCProvider.<option>`` sets a default for all of them; the authenticator's
oauthenticator options ``http_client``, ``http_request_kwargs``, ``validate_server_cert`` and
``basic_auth`` apply to every request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import HTTPClientError, HTTPRequest
from traitlets import default
from traitlets.config import Configurable

from .errors import (
    BadAnswer,
    DiscoveryError,
    GrantRejected,
    InvalidToken,
    NoAccessToken,
    ProviderRefused,
    ProviderUnreachable,
    error_code,
)
from .idtoken import IDTokenValidator
from .provider_options import OIDCProviderOptions

DISCOVERY_PATH = "/.well-known/openid-configuration"
# form posts to the token and revocation endpoints (RFC 6749 §4.1.3, utf-8 per its appendix B)
_FORM_HEADERS = {
    "Accept": "application/json",
    "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    "User-Agent": "JupyterHub",
}
Refusal = Callable[[int, str], type[ProviderRefused]]


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


def _grant_refusal(status: int, error: str) -> type[ProviderRefused]:
    # RFC 6749 §5.2: a spent, revoked or expired code or refresh token is invalid_grant
    return GrantRejected if status in (400, 401) and error == "invalid_grant" else ProviderRefused


def _plain_refusal(status: int, error: str) -> type[ProviderRefused]:
    return ProviderRefused


def _resource_refusal(status: int, error: str) -> type[ProviderRefused]:
    # RFC 6750 §3.1: a resource refuses an invalid or expired access token with 401 (or 403)
    return InvalidToken if status in (401, 403) else ProviderRefused


class OIDCProvider(Configurable, OIDCProviderOptions):
    """An OpenID Connect provider (identity proxy) users may sign in with.

    Endpoints left empty come from the issuer's discovery document, fetched once at first use.
    Its parent is the authenticator, whose HTTP client and request options it uses.
    """

    _discovery: dict[str, Any] | None = None
    _validator: IDTokenValidator | None = None

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

    # ---- discovery ------------------------------------------------------------------------

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

    async def endpoint(self, trait: str) -> str:
        """The URL of an endpoint trait (``token_url``, …), discovered off the event loop."""
        if self._discovery is None and not self.trait_has_value(trait):
            await asyncio.to_thread(self.discovery)
        return str(getattr(self, trait))

    def iss_required(self) -> bool:
        """Whether authorization responses must carry ``iss`` (RFC 9207)."""
        if self.require_iss_in_response is not None:
            return bool(self.require_iss_in_response)
        return bool(self.issuer) and bool(
            self.discovery().get("authorization_response_iss_parameter_supported")
        )

    # ---- ID tokens ------------------------------------------------------------------------

    def id_token_validator(self) -> IDTokenValidator:
        """The validator of this provider's ID tokens (keys fetched at first use, refetched
        when a token names an unknown key)."""
        if self._validator is None:
            jwks_uri = str(self.discovery()["jwks_uri"])

            async def fetch_jwks() -> dict[str, Any]:
                return await self._call("keys request", jwks_uri)

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
        ProviderError
            When the keys cannot be fetched.
        """
        if self._discovery is None:
            await asyncio.to_thread(self.discovery)  # the keys' URL, off the event loop
        return await self.id_token_validator().validate(id_token, nonce=nonce)

    # ---- grants, userinfo, revocation ------------------------------------------------------

    async def redeem_code(self, code: str, redirect_uri: str, code_verifier: str) -> dict[str, Any]:
        """The token response for a sign-in's authorization code (PKCE: its ``code_verifier``).

        Raises
        ------
        ProviderError
            :class:`~.errors.GrantRejected` for a spent or unknown code,
            :class:`~.errors.NoAccessToken` for an answer without an access token, …
        """
        params = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        return await self._grant(params)

    async def refresh(
        self, refresh_token: str, request_timeout: float | None = None
    ) -> dict[str, Any]:
        """The token response for a refresh grant (the refresh token may be rotated in it).

        Raises
        ------
        ProviderError
            :class:`~.errors.GrantRejected` when the refresh token is revoked or expired.
        """
        params = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._grant(params, request_timeout)

    async def userinfo(
        self, access_token: str, token_type: str | None = None, request_timeout: float | None = None
    ) -> dict[str, Any]:
        """The userinfo (a JSON object) of an access token.

        Raises
        ------
        ProviderError
            :class:`~.errors.InvalidToken` when the provider refuses the access token.
        """
        # token_type is case-insensitive (RFC 6749 §5.1), the header's scheme is not
        scheme = token_type if token_type and token_type.lower() != "bearer" else "Bearer"
        headers = {
            "Accept": "application/json",
            "User-Agent": "JupyterHub",
            "Authorization": f"{scheme} {access_token}",
        }
        url = await self.endpoint("userdata_url")
        return await self._call(
            "userinfo",
            url,
            method="GET",
            headers=headers,
            request_timeout=request_timeout,
            refusal=_resource_refusal,
        )

    async def revoke(
        self, token: str, hint: str = "refresh_token", request_timeout: float | None = None
    ) -> bool:
        """Revoke ``token`` (RFC 7009); ``False`` when the provider has no revocation endpoint.

        Raises
        ------
        ProviderError
            When the provider cannot be reached or refuses.
        """
        url = await self.endpoint("revocation_url")
        if not url:
            return False
        params = {"token": token, "token_type_hint": hint}
        headers = self._client_auth(params)
        await self._call(
            "revocation",
            url,
            method="POST",
            headers=headers,
            body=urlencode(params),
            request_timeout=request_timeout,
            json_answer=False,
        )
        return True

    async def _grant(
        self, params: dict[str, str], request_timeout: float | None = None
    ) -> dict[str, Any]:
        """POST a grant to the token endpoint with this hub's client credentials."""
        body = dict(params)
        headers = self._client_auth(body)
        answer = await self._call(
            "token request",
            await self.endpoint("token_url"),
            method="POST",
            headers=headers,
            body=urlencode(body),
            request_timeout=request_timeout,
            refusal=_grant_refusal,
        )
        token_type = answer.get("token_type", "Bearer")
        if not isinstance(answer.get("access_token"), str) or not isinstance(token_type, str):
            raise NoAccessToken(f"token request at {self.name}: the answer has no access token")
        return answer

    def _client_auth(self, params: dict[str, str]) -> dict[str, str]:
        """Form headers with client_secret_basic (RFC 6749 §2.3.1: id and secret
        form-encoded, then base64), or client_secret_post (``params`` get both)."""
        headers = dict(_FORM_HEADERS)
        if self.parent.basic_auth:
            pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            params.update(client_id=self.client_id, client_secret=self.client_secret)
        return headers

    async def _call(
        self,
        what: str,
        url: str,
        *,
        request_timeout: float | None = None,
        refusal: Refusal = _plain_refusal,
        json_answer: bool = True,
        **request: Any,
    ) -> dict[str, Any]:
        """One request: the answer's JSON object (``{}`` without ``json_answer``), else the
        typed error that says why (``refusal``: the class of a 4xx answer, by status and OAuth
        error code).  Neither tokens nor answers' bodies go into the errors' messages."""
        auth = self.parent
        options = {
            **auth.http_request_kwargs,
            "validate_cert": auth.validate_server_cert,
            **request,
        }
        if request_timeout is not None:
            options.update(connect_timeout=request_timeout, request_timeout=request_timeout)
        where = f"{what} at {self.name}"
        try:
            response = await auth.http_client.fetch(HTTPRequest(url, **options), raise_error=False)
        except (TimeoutError, HTTPClientError, OSError) as exc:  # no answer (599: timeout)
            raise ProviderUnreachable(f"{where}: {type(exc).__name__}: {exc}") from None
        status = response.code
        if status >= 500:
            raise ProviderUnreachable(f"{where} answered {status}", status=status)
        body = _json_object(response.body)
        if status >= 400:
            error = error_code((body or {}).get("error"))
            detail = f" ({error})" if error else ""
            cls = refusal(status, error)
            raise cls(f"{where} answered {status}{detail}", status=status, error=error)
        if not 200 <= status < 300:
            raise BadAnswer(f"{where} answered {status}", status=status)
        if not json_answer:
            return {}
        if body is None:
            raise BadAnswer(f"{where}: the answer is not a JSON object", status=status)
        return body

    def __repr__(self) -> str:
        return f"<OIDCProvider {self.name} {self.issuer}>"


def _json_object(body: bytes | None) -> dict[str, Any] | None:
    try:
        value = json.loads(body or b"")
    except ValueError:  # not JSON, or not UTF-8
        return None
    return value if isinstance(value, dict) else None


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


__all__ = ["DISCOVERY_PATH", "OIDCProvider", "build_providers", "fetch_discovery"]
