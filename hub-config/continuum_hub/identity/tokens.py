"""Living tokens, hub side: refresh before expiry, one refresh at a time, entitlements re-read.

oauthenticator refreshes an access token only after ``auth_refresh_age`` and only when userinfo
already refuses it; servers and jobs need a token that is valid *now*.  :class:`TokenRefresher`
refreshes when the remaining lifetime falls below :class:`RefreshPolicy`'s threshold, with the
provider named in the user's ``auth_state`` (found by the lookup it is given:
``FederatedAuthenticator.provider_for``), and

* serializes refreshes per user (a per-user lock; the state is saved before the lock is
  released), so two requests never spend the same refresh token — the demo provider rotates
  confidential clients' refresh tokens late in their life, and reuse of a rotated token revokes
  the whole grant;
* re-reads userinfo at every refresh, so the hub-managed groups follow the entitlements (a lost
  entitlement takes effect at the next refresh; the auth model comes from the callback it is
  given: ``FederatedAuthenticator.refreshed_auth_model``);
* ends the session when the provider rejects the refresh token (``invalid_grant``) or the
  access token, or the user is no longer allowed: the tokens are removed from ``auth_state``,
  the refresh token is revoked, and the caller sends the browser to the *sign in again* page
  (:mod:`.token_api`).

Every request to the provider goes through the provider object
(:class:`~.providers.OIDCProvider`); its typed errors (:mod:`.errors`) are read by
:func:`refresh_answer`.  A provider that cannot be reached, or refuses for another reason (the
hub's client configuration), is not a reason to end anyone's session: the refresh is retried
at the next request.  Token values never reach the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from traitlets import Float, HasTraits, validate

from ..metrics import TOKEN_REFRESHES
from .errors import GrantRejected, InvalidToken, ProviderError
from .providers import OIDCProvider

# auth_state keys that survive the end of a session (no secrets in them)
KEPT_AFTER_SIGN_OUT = ("provider", "issuer")

#: the provider that issued an ``auth_state``'s tokens (``KeyError``/``ValueError``: none now)
ProviderLookup = Callable[[dict[str, Any]], OIDCProvider]
#: the auth model after a refresh: ``(username, provider, auth_state, userinfo)``; ``None``
#: when the user is no longer allowed
Authorize = Callable[[str, OIDCProvider, dict[str, Any], dict[str, Any]], Awaitable[Any]]


class TransientRefreshError(RuntimeError):
    """The provider could not be asked (network, 5xx, unexpected answer): try again later."""


class SessionEnded(RuntimeError):
    """The provider refused the refresh token, or the user may no longer sign in."""


def refresh_answer(provider: OIDCProvider, error: ProviderError) -> RuntimeError:
    """What a provider's error means for a refresh: :class:`SessionEnded` when it rejected the
    refresh token (:class:`~.errors.GrantRejected`) or the access token
    (:class:`~.errors.InvalidToken`), else :class:`TransientRefreshError` (retry later)."""
    if isinstance(error, GrantRejected):
        return SessionEnded(f"{provider.name} refused the refresh token ({error.error})")
    if isinstance(error, InvalidToken):
        return SessionEnded(f"{provider.name}'s userinfo refused the access token")
    # invalid_client and friends are the hub's configuration, not the user's session
    return TransientRefreshError(str(error))


class RefreshOptions(HasTraits):
    """When and how patiently tokens are refreshed (mixed into ``FederatedAuthenticator``)."""

    token_refresh_fraction = Float(
        0.5,
        config=True,
        help="""Refresh an access token when less than this fraction of its lifetime (the
        provider's ``expires_in``) remains (default 0.5).  Applies to the hub's own refreshes
        and to ``GET /hub/api/continuum/token``.""",
    )
    token_refresh_min_seconds = Float(
        60.0,
        config=True,
        help="""Refresh an access token in any case when fewer seconds than this remain
        (default 60; capped at 90 % of the token's lifetime so fresh tokens are handed out).""",
    )
    token_refresh_timeout = Float(
        20.0,
        config=True,
        help="Seconds to wait for the identity provider's token and userinfo endpoints when "
        "refreshing (default 20).",
    )

    @validate("token_refresh_fraction")
    def _validate_token_refresh_fraction(self, proposal: dict[str, Any]) -> float:
        if not 0 < proposal["value"] < 1:
            raise ValueError("token_refresh_fraction must be between 0 and 1 (exclusive)")
        return float(proposal["value"])

    @validate("token_refresh_min_seconds")
    def _validate_token_refresh_min_seconds(self, proposal: dict[str, Any]) -> float:
        if proposal["value"] < 0:
            raise ValueError("token_refresh_min_seconds must not be negative")
        return float(proposal["value"])

    @validate("token_refresh_timeout")
    def _validate_token_refresh_timeout(self, proposal: dict[str, Any]) -> float:
        if proposal["value"] <= 0:
            raise ValueError("token_refresh_timeout must be positive")
        return float(proposal["value"])


@dataclass(frozen=True)
class RefreshPolicy:
    """When is an access token too close to its expiry to hand out?

    A token is refreshed when its remaining lifetime is below
    ``max(fraction × lifetime, min_seconds)``, capped at 90 % of its lifetime so that a token
    fresh from the provider is always good enough (no refresh storm with short-lived tokens).

    Parameters
    ----------
    fraction
        Fraction of the token's lifetime (``expires_in`` at issue) below which it is refreshed.
    min_seconds
        Refresh in any case when fewer seconds remain.
    """

    fraction: float = 0.5
    min_seconds: float = 60.0

    def threshold(self, lifetime: float) -> float:
        """Seconds of remaining lifetime below which a token of ``lifetime`` is refreshed."""
        return min(max(self.fraction * lifetime, self.min_seconds), 0.9 * lifetime)

    def needs_refresh(self, auth_state: Mapping[str, Any], now: float | None = None) -> bool:
        """Whether the access token in ``auth_state`` must be refreshed before use.

        A token without a known expiry (``expires_at``) is refreshed: its age is unknown.
        """
        now = time.time() if now is None else now
        expires_at = _number(auth_state.get("expires_at"))
        if not auth_state.get("access_token") or expires_at is None:
            return True
        remaining = expires_at - now
        response = auth_state.get("token_response")
        lifetime = _number(response.get("expires_in")) if isinstance(response, Mapping) else None
        if lifetime is None or lifetime <= 0:
            lifetime = max(remaining, 0.0)
        return remaining < self.threshold(lifetime)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class TokenRefresher:
    """Refreshes users' tokens (one per authenticator).

    Parameters
    ----------
    provider_for
        The provider of an ``auth_state`` (raises ``KeyError``/``ValueError`` when there is
        none any more: the session ends).
    authorize
        The auth model after a refresh (groups, admin), ``None`` when the user is no longer
        allowed.
    policy
        When to refresh.
    timeout
        Seconds to wait for the provider per request.
    userinfo_key
        The ``auth_state`` key holding the userinfo (``user_auth_state_key``).
    log
        Where refusals and failures are logged (never with a token).
    """

    def __init__(
        self,
        provider_for: ProviderLookup,
        authorize: Authorize,
        policy: RefreshPolicy,
        *,
        timeout: float = 20.0,
        userinfo_key: str = "oauth_user",
        log: logging.Logger | logging.LoggerAdapter | None = None,
    ) -> None:
        self.provider_for = provider_for
        self.authorize = authorize
        self.policy = policy
        self.timeout = timeout
        self.userinfo_key = userinfo_key
        self.log = log or logging.getLogger(__name__)
        # a user's lock lives as long as someone waits on it
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.refresh_count = 0  # refresh grants sent (tests and metrics)

    def lock(self, username: str) -> asyncio.Lock:
        """The lock serializing the refreshes of ``username``."""
        lock = self._locks.get(username)
        if lock is None:
            lock = self._locks[username] = asyncio.Lock()
        return lock

    async def refresh_user(self, user: Any, *, reread: bool = True) -> dict[str, Any] | bool:
        """Refresh ``user``'s tokens if needed; with ``reread``, re-read userinfo in any case.

        Returns
        -------
        ``True`` when nothing changed, ``False`` when the user must sign in again (the tokens
        are then gone from ``auth_state``), else the auth model (``name``, ``auth_state``,
        ``groups``, ``admin``) to apply; its ``auth_state`` is already saved.
        """
        lock = self.lock(user.name)
        async with lock:
            state = await user.get_auth_state()
            if not state or not (state.get("refresh_token") or state.get("access_token")):
                return False
            try:
                return await self._refresh_locked(user, state, reread)
            except SessionEnded as exc:
                self.log.warning("Session of %s ended: %s", user.name, exc)
                await self._end_session(user, state, str(exc))
                return False
            except TransientRefreshError as exc:
                self.log.warning("Cannot refresh the tokens of %s now: %s", user.name, exc)
                return True

    def provider_of(self, auth_state: Mapping[str, Any]) -> OIDCProvider:
        """The provider that issued ``auth_state``'s tokens.

        Raises
        ------
        SessionEnded
            When that provider is not configured any more, or has another issuer now.
        """
        try:
            return self.provider_for(dict(auth_state))
        except (KeyError, ValueError) as exc:
            raise SessionEnded(f"the identity provider of this session is unknown: {exc}") from None

    async def _refresh_locked(
        self, user: Any, state: dict[str, Any], reread: bool
    ) -> dict[str, Any] | bool:
        provider = self.provider_of(state)
        sub = (state.get(self.userinfo_key) or {}).get("sub")
        refreshed = False
        if self.policy.needs_refresh(state):
            await self._redeem(user, provider, state, sub)
            refreshed = True
        elif not reread:
            return True
        try:
            user_info = await self._userinfo(provider, state["access_token"])
        except SessionEnded:
            if refreshed or not state.get("refresh_token"):
                raise
            # the provider dropped the access token early (e.g. a revoked grant): refresh once
            await self._redeem(user, provider, state, sub)
            user_info = await self._userinfo(provider, state["access_token"])
        if sub and user_info.get("sub") != sub:
            raise SessionEnded("userinfo names another subject than at sign-in")
        state[self.userinfo_key] = user_info
        model = await self.authorize(user.name, provider, state, user_info)
        if model is None:
            raise SessionEnded("no longer allowed to use this hub (entitlements changed)")
        # saved before the lock is released: the next caller sees the current state
        await user.save_auth_state(state)
        return model

    async def _redeem(
        self, user: Any, provider: OIDCProvider, state: dict[str, Any], sub: Any
    ) -> None:
        """Refresh grant; the new tokens go into ``state`` and are saved at once (a rotated
        refresh token must never be lost, even if what follows fails)."""
        refresh_token = state.get("refresh_token")
        if not refresh_token:
            raise SessionEnded("the access token expired and there is no refresh token")
        sent = time.time()  # the token's lifetime counts from before the request, to be safe
        self.refresh_count += 1
        try:
            token_info = await provider.refresh(refresh_token, request_timeout=self.timeout)
        except ProviderError as exc:
            answer = refresh_answer(provider, exc)
            outcome = "rejected" if isinstance(answer, SessionEnded) else "unavailable"
            TOKEN_REFRESHES.labels(provider=provider.name, outcome=outcome).inc()
            raise answer from None
        TOKEN_REFRESHES.labels(provider=provider.name, outcome="success").inc()
        if isinstance(token_info.get("refresh_token"), str):
            # rotated: should the session end after all, the new one is what to revoke
            state["refresh_token"] = token_info["refresh_token"]
        await self._check_id_token(provider, token_info, sub)
        state.update(
            access_token=token_info["access_token"],
            # a provider that does not rotate sends no new refresh token: keep ours
            refresh_token=token_info.get("refresh_token") or state.get("refresh_token"),
            id_token=token_info.get("id_token") or state.get("id_token"),
            token_response=token_info,
            expires_at=_expires_at(token_info, sent),
        )
        await user.save_auth_state(state)

    async def _check_id_token(
        self, provider: OIDCProvider, token_info: dict[str, Any], sub: str | None
    ) -> None:
        """A refreshed ID token must be valid and name the same subject (OIDC Core 12.2)."""
        id_token = token_info.get("id_token")
        if not id_token:
            return
        try:
            claims = await provider.validate_id_token(id_token)
        except (ProviderError, ValueError) as exc:  # IDTokenError, or keys that cannot be fetched
            raise SessionEnded(f"the refreshed ID token is invalid: {exc}") from None
        if sub and claims.get("sub") != sub:
            raise SessionEnded("the refreshed ID token names another subject")

    async def _userinfo(self, provider: OIDCProvider, access_token: str) -> dict[str, Any]:
        try:
            user_info = await provider.userinfo(access_token, request_timeout=self.timeout)
        except ProviderError as exc:
            raise refresh_answer(provider, exc) from None
        if not user_info:
            raise TransientRefreshError(f"{provider.name}'s userinfo answered an empty object")
        return user_info

    async def _end_session(self, user: Any, state: dict[str, Any], reason: str) -> None:
        """Remove the tokens from ``auth_state``; revoke the refresh token where possible."""
        kept = {key: state[key] for key in KEPT_AFTER_SIGN_OUT if key in state}
        kept["signed_out"] = {"reason": reason, "at": int(time.time())}
        await user.save_auth_state(kept)
        refresh_token = state.get("refresh_token")
        if not refresh_token:
            return
        try:
            provider = self.provider_of(state)
        except SessionEnded:
            return
        try:
            await provider.revoke(refresh_token, "refresh_token", request_timeout=self.timeout)
        except ProviderError as exc:
            self.log.info("Could not revoke the refresh token of %s: %s", user.name, exc)


def _expires_at(token_info: Mapping[str, Any], now: float | None = None) -> int | None:
    """Epoch seconds at which the access token of a token response expires."""
    expires_in = _number(token_info.get("expires_in"))
    if expires_in is None:
        return None
    return int((time.time() if now is None else now) + expires_in)
