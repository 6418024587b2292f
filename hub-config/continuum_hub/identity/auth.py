"""``continuum-oidc``: sign-in through one or several eduGAIN-style OpenID Connect proxies.

:class:`FederatedAuthenticator` is oauthenticator's ``GenericOAuthenticator`` plus:

* several providers (:class:`~.providers.OIDCProvider`), each from its issuer's discovery
  document (whose ``issuer`` must equal the configured one), with its own client, login button,
  redirect URI and trust settings (handlers in :mod:`.login`);
* strict validation of the ID token (signature against the issuer's keys, ``iss``, ``aud``,
  ``azp``, ``exp``, ``iat``, ``nonce``) and a userinfo ``sub`` equal to the ID token's;
* stable hub usernames per ``(issuer, sub)`` that never collide across providers, with
  optional linking through a trusted claim (:mod:`.identities`);
* ``eduperson_entitlement`` values parsed per AARC-G069, filtered to the namespaces and
  authorities trusted *for the provider that asserted them*, and turned into hub-managed
  JupyterHub groups (``manage_groups``), which gate login (``allowed_groups``), admin rights
  (``admin_groups``) and site access — usernames, groups and the allowed check are the
  admission part (:mod:`.admission`);
* living tokens: access tokens refreshed before they expire and entitlements re-read
  (:mod:`.tokens`), served to the user's servers and jobs at ``/hub/api/continuum/token`` and
  ended sessions sent to ``/hub/continuum/sign-in-again`` (:mod:`.token_api`; both routes come
  from :meth:`~FederatedAuthenticator.get_handlers`);
* defaults suited to research AAI proxies (scopes, username claim, POSIX-safe usernames).

The authenticator's own ``issuer``, ``client_id``, ``client_secret``, ``trusted_namespaces``, …
describe the *primary* provider (the single-provider configuration); ``providers`` adds more.
"""

from __future__ import annotations

import time
from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import default

from ..metrics import SIGN_IN_REFUSALS, initialize_provider_metrics
from ..workshops.join import JOINING, event_groups, event_joined_by, is_event_guest, join_handlers
from .admission import UserAdmissionMixin
from .errors import DiscoveryError, ProviderError
from .identities import IdentityStore
from .idtoken import IDTokenError
from .login import (
    NAME_ROUTE,
    ProviderCallbackHandler,
    ProviderChoiceHandler,
    ProviderLoginHandler,
    nonce_for,
    sign_in_error,
)
from .provider_options import DEFAULT_SCOPE, PRIMARY_SETTINGS, FederationOptions
from .providers import OIDCProvider, build_providers
from .token_api import send_to_sign_in_again, token_handlers
from .tokens import RefreshOptions, RefreshPolicy, TokenRefresher

__all__ = ["FederatedAuthenticator"]


class FederatedAuthenticator(
    UserAdmissionMixin, GenericOAuthenticator, FederationOptions, RefreshOptions
):
    """Sign users in through OpenID Connect identity proxies (EGI Check-in, INDIGO IAM, …).

    One provider: configure ``issuer``, ``client_id``, ``client_secret`` and
    ``trusted_namespaces``; the endpoints come from discovery.  More providers: ``providers``.
    Entitlements become JupyterHub groups named after the group path (``vo.example.org``,
    ``vo.example.org:analysis``; non-member roles as ``vo.example.org#manager``).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # endpoints the configuration sets (the others come from discovery)
        self._explicit_endpoints = {
            key
            for key in ("authorize_url", "token_url", "userdata_url")
            if self.trait_has_value(key)
        }
        self._providers: dict[str, OIDCProvider] | None = None
        self._store: IdentityStore | None = None
        self._refresher: TokenRefresher | None = None
        self._hub_users: set[str] = set()

    # ---- providers -------------------------------------------------------------------------

    @property
    def providers_by_name(self) -> dict[str, OIDCProvider]:
        """Every configured provider by name, the primary one first (built and checked once).

        Raises
        ------
        ValueError
            When a provider is misconfigured or two share a name or an issuer.
        """
        if self._providers is None:
            primary = None
            if self.issuer:
                claim = self.username_claim
                primary = {
                    "name": self.provider_name,
                    "display_name": self.login_service,
                    "scope": list(self.scope),
                    "username_claim": claim if isinstance(claim, str) else "preferred_username",
                    "callback_url": self.oauth_callback_url,
                    **{key: getattr(self, key) for key in PRIMARY_SETTINGS},
                    **{key: getattr(self, key) for key in self._explicit_endpoints},
                }
            self._providers = build_providers(self, primary, self.providers)
            initialize_provider_metrics(self._providers)
        return self._providers

    @property
    def primary_provider(self) -> OIDCProvider | None:
        """The provider of ``/hub/oauth_login`` without a name: the one configured through
        ``issuer``, or the only one."""
        providers = self.providers_by_name
        if self.issuer:
            return providers[self.provider_name]
        return next(iter(providers.values())) if len(providers) == 1 else None

    def provider_for(self, auth_state: dict[str, Any]) -> OIDCProvider:
        """The provider a user signed in with, from their ``auth_state``.

        Raises
        ------
        KeyError
            When that provider is not configured (any more).
        ValueError
            When it now has another issuer than the one the tokens came from.
        """
        name = auth_state.get("provider")
        if name is None:  # auth_state from before several providers: the primary's
            primary = self.primary_provider
            if primary is None:
                raise KeyError("auth_state names no provider")
            return primary
        provider = self.providers_by_name[name]
        if auth_state.get("issuer") not in (None, provider.issuer):
            raise ValueError(f"provider {name!r} has another issuer than the user's tokens")
        return provider

    def provider_callback_url(self, provider: OIDCProvider, handler: Any = None) -> str:
        """The redirect URI of ``provider``: its own ``callback_url``, the hub's
        ``oauth_callback_url`` for the primary one, that URL plus ``/<name>`` for the others."""
        if provider.callback_url:
            return provider.callback_url
        base = self.get_callback_url(handler)
        if self.issuer and provider is self.primary_provider:
            return base
        return f"{base.rstrip('/')}/{provider.name}"

    def get_handlers(self, app: Any) -> list[tuple[Any, ...]]:
        """Login page, per-provider login and callback URLs (unnamed ones for the primary),
        the access-token API and the *sign in again* page (JupyterHub puts ``/hub/`` before
        each: ``/hub/api/continuum/token``, ``/hub/continuum/sign-in-again``)."""
        self.providers_by_name  # noqa: B018 - a misconfigured provider stops the hub at start
        if self.auto_login and self.primary_provider is None:
            raise ValueError("auto_login needs one provider, or a primary one (issuer)")
        return [
            (r"/login", ProviderChoiceHandler),
            (r"/oauth_login", ProviderLoginHandler),
            (rf"/oauth_login/{NAME_ROUTE}", ProviderLoginHandler),
            (r"/oauth_callback", ProviderCallbackHandler),
            (rf"/oauth_callback/{NAME_ROUTE}", ProviderCallbackHandler),
            (r"/logout", self.logout_handler),
            *token_handlers(self.token_refresher()),
            *join_handlers(),
        ]

    # ---- sign-in ---------------------------------------------------------------------------

    async def authenticate(self, handler: Any, data: Any = None, **kwargs: Any) -> dict | None:
        """Redeem the code at the provider the callback belongs to, then build the user."""
        if not isinstance(handler, ProviderCallbackHandler):
            self.log.warning("Sign-in refused: not through a provider's callback")
            return None
        provider, state = handler.provider, handler.oidc_state()
        if not state.get("code_verifier") or not state.get("nonce"):
            raise web.HTTPError(400, "This sign-in has expired; please start again.")
        try:
            token_info = await provider.redeem_code(
                handler.get_argument("code"),
                self.provider_callback_url(provider, handler),
                state["code_verifier"],
            )
        except ProviderError as exc:
            raise sign_in_error(exc, self.log, provider.name) from None
        nonce = nonce_for(state["nonce"])
        model = await self.token_to_auth_model(provider, token_info, nonce=nonce)
        joining = event_joined_by(state.get("next_url"), set(model.get("groups") or ()))
        if joining is not None:  # let check_allowed admit them outside allowed_groups
            model[JOINING] = joining.id
        return model

    async def token_to_auth_model(
        self, provider: OIDCProvider, token_info: dict[str, Any], nonce: str | None = None
    ) -> dict[str, Any]:
        """The auth model (``name``, ``admin``, ``groups``, ``auth_state``) for a sign-in's
        token response from ``provider``, whose ID token must carry ``nonce``."""
        try:
            if not token_info.get("id_token"):
                raise IDTokenError("the token response has no ID token")
            claims = await provider.validate_id_token(token_info["id_token"], nonce=nonce)
        except (ProviderError, ValueError) as exc:  # IDTokenError is a ValueError; keys unreadable
            self.log.warning("Sign-in refused: ID token from %s: %s", provider.name, exc)
            SIGN_IN_REFUSALS.labels(provider=provider.name, reason="invalid_id_token").inc()
            raise web.HTTPError(403, "Your sign-in could not be verified.") from None
        try:
            user_info = await provider.userinfo(
                token_info["access_token"], token_info.get("token_type")
            )
        except ProviderError as exc:
            raise sign_in_error(exc, self.log, provider.name) from None
        if user_info.get("sub") != claims["sub"]:
            self.log.warning("Sign-in refused: userinfo subject differs from the ID token's")
            SIGN_IN_REFUSALS.labels(provider=provider.name, reason="subject_mismatch").inc()
            raise web.HTTPError(403, "Your sign-in could not be verified.")
        username = await self.username_for(provider, claims["sub"], user_info)
        auth_state = self.build_auth_state_dict(token_info, user_info)
        auth_state.update(provider=provider.name, issuer=provider.issuer)
        expires_in = token_info.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            auth_state["expires_at"] = int(time.time() + expires_in)
        if self.modify_auth_state_hook is not None:
            auth_state = await self._call_modify_auth_state_hook(auth_state)
        admin = True if username in self.admin_users else None
        model = {"name": username, "admin": admin, "auth_state": auth_state}
        model = await self.update_auth_model(model)
        if not self.manage_groups:
            return model
        model = await self._apply_managed_groups(model)
        # a workshop event's group lasts the event's window, whatever the entitlements say
        model["groups"] = sorted(set(model.get("groups") or ()) | event_groups(username))
        return model

    # ---- defaults --------------------------------------------------------------------------

    @default("authorize_url")
    def _authorize_url_default(self) -> str:
        return self._primary_endpoint("authorization_endpoint")

    @default("token_url")
    def _token_url_default(self) -> str:
        return self._primary_endpoint("token_endpoint")

    @default("userdata_url")
    def _userdata_url_default(self) -> str:
        return self._primary_endpoint("userinfo_endpoint")

    def _primary_endpoint(self, key: str) -> str:
        if not self.issuer:
            raise DiscoveryError("FederatedAuthenticator.issuer is not set")
        return str(self.providers_by_name[self.provider_name].discovery()[key])

    @default("scope")
    def _scope_default(self) -> list[str]:
        return list(DEFAULT_SCOPE)

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

    # ---- living tokens ---------------------------------------------------------------------

    def token_refresher(self) -> TokenRefresher:
        """The :class:`~.tokens.TokenRefresher` of this authenticator (one per hub)."""
        if self._refresher is None:
            self._refresher = TokenRefresher(
                self.provider_for,
                self.refreshed_auth_model,
                RefreshPolicy(self.token_refresh_fraction, self.token_refresh_min_seconds),
                timeout=self.token_refresh_timeout,
                userinfo_key=self.user_auth_state_key,
                log=self.log,
            )
        return self._refresher

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        """Refresh the access token before it expires and re-read the entitlements.

        Called by JupyterHub every ``auth_refresh_age`` seconds of a user's activity and
        before spawns.  Returns the new auth model (groups re-synced), ``True`` when the
        provider cannot be reached (retried at the next request), or ``False`` when the
        session has ended (refresh token refused, no longer allowed): the tokens are then
        gone, and the user's browser is sent to the *sign in again* page.
        """
        if is_event_guest(user.name):
            return True  # signed in with a workshop's guest code: no tokens to refresh
        refreshed = await self.token_refresher().refresh_user(user)
        if refreshed is False and handler is not None:
            send_to_sign_in_again(handler, user)
        return refreshed
