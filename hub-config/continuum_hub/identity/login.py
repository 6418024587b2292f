"""Sign-in handlers for several OpenID providers, with the state bound to one of them.

``/hub/login``
    One *Sign in with …* button per provider; the one used last in this browser is marked.
``/hub/oauth_login/<name>`` (:class:`ProviderLoginHandler`)
    Starts the authorization code flow at provider ``<name>``: a fresh ``state``, PKCE S256
    verifier and nonce secret, kept with the provider's name in oauthenticator's signed,
    HTTP-only state cookie; the request carries the secret's hash as ``nonce`` (request URLs
    end up in logs; the ID token must then carry the hash of the cookie's secret).
``/hub/oauth_callback/<name>`` (:class:`ProviderCallbackHandler`)
    The provider's own redirect URI.  The state must be the cookie's, issued for *this*
    provider, and an ``iss`` in the response (RFC 9207) must be this provider's issuer —
    together these defeat mix-up attacks, where a response from one provider is played to
    the hub as another's.

``/hub/oauth_login`` and ``/hub/oauth_callback`` (no name) belong to the primary provider (the
one configured through ``FederatedAuthenticator.issuer``), as with a single provider; without
one, the login URL shows the choice of providers.

A sign-in the provider fails (:mod:`.errors`: unreachable, refusing, answering nonsense) ends
with a 403 page (:func:`sign_in_error`); the provider's own error answer to the browser, with
400 (:meth:`ProviderCallbackHandler.check_error`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jupyterhub.handlers.login import LoginHandler
from markupsafe import Markup
from oauthenticator.oauth2 import (
    OAuthCallbackHandler,
    OAuthLoginHandler,
    _deserialize_state,
    _serialize_state,
)
from tornado import web
from tornado.escape import url_escape
from tornado.httputil import url_concat
from tornado.log import app_log

from ..metrics import SIGN_IN_REFUSALS
from .errors import DiscoveryError, NoAccessToken, ProviderError, error_code
from .providers import OIDCProvider

LAST_PROVIDER_COOKIE = "continuum-last-provider"
NAME_ROUTE = r"([a-z0-9-]{1,32})"


def nonce_for(secret: str) -> str:
    """The ``nonce`` sent for (and expected in the ID token of) a sign-in's nonce secret."""
    digest = hashlib.sha256(secret.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_in_error(
    error: ProviderError, log: Any = app_log, provider: str = "unknown"
) -> web.HTTPError:
    """The answer to a sign-in that failed at ``provider``'s back channel (code grant,
    userinfo): the reason goes to the log, the browser gets a 403 page that names no detail."""
    log.warning("Sign-in refused: %s", error)
    SIGN_IN_REFUSALS.labels(provider=provider, reason="back_channel").inc()
    if isinstance(error, NoAccessToken):
        return web.HTTPError(403, "The identity provider returned no access token.")
    return web.HTTPError(403, "Your sign-in could not be completed.")


async def discover(provider: OIDCProvider, attribute: str) -> None:
    """Make sure ``provider``'s discovery document is read (off the event loop); 503 if not."""
    try:
        value = await asyncio.to_thread(getattr, provider, attribute)
        if callable(value):
            await asyncio.to_thread(value)
    except DiscoveryError as exc:
        app_log.error("Identity provider %s unusable: %s", provider.name, exc)
        raise web.HTTPError(503, "The identity provider cannot be reached; try later.") from None


def _provider(handler: web.RequestHandler, name: str | None) -> OIDCProvider | None:
    """The provider a URL names (404 for an unknown one); the primary one for no name."""
    providers = handler.authenticator.providers_by_name  # type: ignore[attr-defined]
    if name is None:
        return handler.authenticator.primary_provider  # type: ignore[attr-defined]
    if name not in providers:
        raise web.HTTPError(404, f"No identity provider {name!r} here.")
    return providers[name]


class ProviderLoginHandler(OAuthLoginHandler):
    """Redirect to one provider's authorization endpoint (state, PKCE and nonce always on)."""

    provider: OIDCProvider

    @property
    def _OAUTH_AUTHORIZE_URL(self) -> str:
        return self.provider.authorize_url

    async def get(self, name: str | None = None) -> None:
        provider = _provider(self, name)
        if provider is None:  # several providers and no primary: let the user choose
            next_url = self._get_next_url()
            login = self.settings["login_url"]
            self.redirect(url_concat(login, {"next": next_url}) if next_url else login)
            return
        self.provider = provider
        await discover(provider, "authorize_url")
        redirect_uri = self.authenticator.provider_callback_url(provider, self)
        state_id = self._generate_state_id()
        code_verifier, code_challenge = self._generate_pkce_params()
        nonce_secret = secrets.token_urlsafe(32)
        # the signed, HTTP-only state cookie binds state, verifier and nonce to this provider
        self.set_state_cookie(
            _serialize_state(
                {
                    "state_id": state_id,
                    "next_url": self._get_next_url(),
                    "code_verifier": code_verifier,
                    "nonce": nonce_secret,
                    "provider": provider.name,
                }
            )
        )
        self._set_cookie(LAST_PROVIDER_COOKIE, provider.name, encrypted=False, expires_days=365)
        params = dict(self.authenticator.extra_authorize_params)
        params.update(
            state=_serialize_state({"state_id": state_id}),
            nonce=nonce_for(nonce_secret),
            code_challenge=code_challenge,
            code_challenge_method="S256",
        )
        self.log.info("Sign-in through %s, redirect URI %s", provider.name, redirect_uri)
        self.authorize_redirect(
            redirect_uri=redirect_uri,
            client_id=provider.client_id,
            scope=provider.scope,
            extra_params=params,
            response_type="code",
        )


class ProviderCallbackHandler(OAuthCallbackHandler):
    """Complete a sign-in at the redirect URI of the provider it was started with."""

    provider: OIDCProvider

    # tornado logs every refused or failed request with its full URL (and, for errors, the
    # whole request), which here carries the authorization code and state: log neither
    def _request_summary(self) -> str:
        uri = urlsplit(self.request.uri or "")
        query = "&".join(f"{name}=[secret]" for name, _ in parse_qsl(uri.query, True))
        path = uri.path + (f"?{query}" if query else "")
        return f"{self.request.method} {path} ({self.request.remote_ip})"

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, web.HTTPError):
            super().log_exception(typ, value, tb)  # one line, with the summary above
        else:
            self.log.error(
                "Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb)
            )

    def check_error(self) -> None:
        """A provider's error answer (RFC 6749 §4.1.2.1), shown by its code only: anyone can
        make a link with an ``error_description`` of their choosing, so that text goes to the
        log, quoted, never onto the hub's page."""
        error = self.get_argument("error", None)
        if error is None:
            return
        code = error_code(error) or "invalid_error"  # only registered-looking codes are shown
        description = self.get_argument("error_description", "")
        SIGN_IN_REFUSALS.labels(provider=self.provider.name, reason="provider_error").inc()
        self.log.warning(
            "Sign-in refused: %s answered %s: %r", self.provider.name, code, description[:200]
        )
        raise web.HTTPError(400, f"The identity provider did not sign you in ({code}).")

    def oidc_state(self) -> dict[str, Any]:
        """This sign-in's state from the cookie (``code_verifier``, ``nonce``, ``provider``)."""
        return _deserialize_state(self.get_state_cookie() or "") or {}

    def check_provider(self) -> None:
        """The state must have been issued for this callback's provider, and an ``iss`` in the
        response must be its issuer (RFC 9207)."""
        started_with = self.oidc_state().get("provider")
        if started_with != self.provider.name:
            SIGN_IN_REFUSALS.labels(provider=self.provider.name, reason="wrong_provider").inc()
            self.log.warning(
                "Sign-in refused: callback of %s for a sign-in started with %r",
                self.provider.name,
                started_with,
            )
            raise web.HTTPError(400, "This sign-in was started with another identity provider.")
        iss = self.get_argument("iss", None)
        if iss is None:
            if self.provider.iss_required():
                self.log.warning("Sign-in refused: %s sent no iss", self.provider.name)
                SIGN_IN_REFUSALS.labels(provider=self.provider.name, reason="no_iss").inc()
                raise web.HTTPError(400, "The identity provider's answer is incomplete.")
        elif not hmac.compare_digest(iss.encode(), self.provider.issuer.encode()):
            SIGN_IN_REFUSALS.labels(provider=self.provider.name, reason="wrong_issuer").inc()
            self.log.warning(
                "Sign-in refused: %s answer names issuer %r", self.provider.name, iss[:200]
            )
            raise web.HTTPError(400, "The answer came from another identity provider.")

    async def get(self, name: str | None = None) -> None:
        provider = _provider(self, name)
        if provider is None:
            raise web.HTTPError(404, "Sign in through one of the identity providers.")
        self.provider = provider
        await discover(provider, "iss_required")
        self.check_arguments()
        self.check_provider()
        user = await self.login_user()
        if user is None:  # no allowed group (entitlements), or blocked
            SIGN_IN_REFUSALS.labels(provider=provider.name, reason="not_allowed").inc()
            raise web.HTTPError(403, self.authenticator.custom_403_message)
        self.redirect(self.get_next_url(user))


def login_buttons(providers: list[OIDCProvider], base_url: str, next_url: str, last: str) -> str:
    """HTML of the provider buttons (the last used one first in style, marked as such)."""
    items = []
    for provider in providers:
        url = f"{base_url}oauth_login/{provider.name}"
        url = url_concat(url, {"next": next_url}) if next_url else url
        used = provider.name == last
        items.append(
            Markup(
                '<a role="button" class="btn {cls} btn-lg provider-login" '
                'data-provider="{name}" href="{url}">Sign in with {label}</a>{mark}'
            ).format(
                cls="btn-jupyter" if used or len(providers) == 1 else "btn-outline-secondary",
                name=provider.name,
                url=url,
                label=provider.display_name,
                mark=Markup(' <small class="text-muted last-used">(used last time)</small>')
                if used and len(providers) > 1
                else "",
            )
        )
    rows = Markup("").join(Markup('<div class="my-2">{}</div>\n').format(i) for i in items)
    return str(Markup('<div class="service-login" id="provider-login">\n{}</div>').format(rows))


class ProviderChoiceHandler(LoginHandler):
    """The hub's login page with one button per provider."""

    def _render(self, login_error: str | None = None, username: str | None = None, **kwargs):
        next_url = self.get_argument("next", "")
        last = self.get_cookie(LAST_PROVIDER_COOKIE, "")
        providers = list(self.authenticator.providers_by_name.values())
        if last not in self.authenticator.providers_by_name:
            last = ""
        return self.render_template(
            "login.html",
            next=url_escape(next_url),
            username=username,
            login_error=login_error,
            login_url=self.settings["login_url"],
            authenticator_login_url=url_concat(
                self.authenticator.login_url(self.hub.base_url), {"next": next_url}
            ),
            authenticator=self.authenticator,
            xsrf=self.xsrf_token.decode("ascii"),
            custom_html=login_buttons(providers, self.hub.base_url, next_url, last),
            **kwargs,
        )
