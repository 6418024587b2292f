"""Living tokens, hub side: refresh before expiry, one refresh at a time, entitlements re-read.

oauthenticator refreshes an access token only after ``auth_refresh_age`` and only when userinfo
already refuses it; servers and jobs need a token that is valid *now*.  :class:`TokenRefresher`
refreshes when the remaining lifetime falls below :class:`RefreshPolicy`'s threshold, with the
provider named in the user's ``auth_state`` (``FederatedAuthenticator.provider_for``), and

* serializes refreshes per user (a per-user lock; the state is saved before the lock is
  released), so two requests never spend the same refresh token — the demo provider rotates
  confidential clients' refresh tokens late in their life, and reuse of a rotated token revokes
  the whole grant;
* re-reads userinfo at every refresh, so the hub-managed groups follow the entitlements (a lost
  entitlement takes effect at the next refresh);
* ends the session when the provider refuses the refresh token (``invalid_grant``) or the user
  is no longer allowed: the tokens are removed from ``auth_state`` and the caller sends the
  browser to the *sign in again* page (:mod:`continuum_hub.token_api`).

A provider that cannot be reached is not a reason to end anyone's session: the refresh is
retried at the next request.  Token values never reach the log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

# auth_state keys that survive the end of a session (no secrets in them)
KEPT_AFTER_SIGN_OUT = ("provider", "issuer")


class TransientRefreshError(RuntimeError):
    """The provider could not be asked (network, 5xx, unexpected answer): try again later."""


class SessionEnded(RuntimeError):
    """The provider refused the refresh token, or the user may no longer sign in."""


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


def provider_of(authenticator: Any, auth_state: Mapping[str, Any]) -> Any:
    """The provider (``OIDCProvider``) that issued ``auth_state``'s tokens.

    Raises
    ------
    SessionEnded
        When that provider is not configured any more, or has another issuer now.
    """
    try:
        return authenticator.provider_for(dict(auth_state))
    except (KeyError, ValueError) as exc:
        raise SessionEnded(f"the identity provider of this session is unknown: {exc}") from None


class TokenRefresher:
    """Refreshes users' tokens for a ``FederatedAuthenticator`` (one per authenticator).

    Parameters
    ----------
    authenticator
        The authenticator (for ``provider_for``, groups, admin and allow rules, ``basic_auth``,
        the HTTP client and the log).
    policy
        When to refresh.
    timeout
        Seconds to wait for the provider per request.
    """

    def __init__(self, authenticator: Any, policy: RefreshPolicy, timeout: float = 20.0) -> None:
        self.authenticator = authenticator
        self.policy = policy
        self.timeout = timeout
        self.log = authenticator.log
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

    async def _refresh_locked(
        self, user: Any, state: dict[str, Any], reread: bool
    ) -> dict[str, Any] | bool:
        provider = provider_of(self.authenticator, state)
        sub = (state.get(self.authenticator.user_auth_state_key) or {}).get("sub")
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
        state[self.authenticator.user_auth_state_key] = user_info
        model = await self._auth_model(user, provider, state, user_info)
        # saved before the lock is released: the next caller sees the current state
        await user.save_auth_state(state)
        return model

    async def _redeem(self, user: Any, provider: Any, state: dict[str, Any], sub: Any) -> None:
        """Refresh grant; the new tokens go into ``state`` and are saved at once (a rotated
        refresh token must never be lost, even if what follows fails)."""
        sent = time.time()  # the token's lifetime counts from before the request, to be safe
        token_info = await self._refresh_grant(provider, state)
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

    async def _auth_model(
        self, user: Any, provider: Any, state: dict[str, Any], user_info: dict[str, Any]
    ) -> dict[str, Any]:
        auth = self.authenticator
        groups = set(auth.groups_from_user_info(provider, user_info))
        admin: bool | None = True if user.name in auth.admin_users else None
        if admin is None and auth.admin_groups:
            admin = bool(groups & set(auth.admin_groups))
        model = {"name": user.name, "auth_state": state, "groups": sorted(groups), "admin": admin}
        try:
            allowed = await auth.check_allowed(user.name, model)
        except Exception as exc:  # oauthenticator refuses with an HTTP 403
            self.log.info("Refresh of %s: check_allowed refused: %s", user.name, exc)
            allowed = False
        if not allowed:
            raise SessionEnded("no longer allowed to use this hub (entitlements changed)")
        return model

    async def _check_id_token(
        self, provider: Any, token_info: dict[str, Any], sub: str | None
    ) -> None:
        """A refreshed ID token must be valid and name the same subject (OIDC Core 12.2)."""
        id_token = token_info.get("id_token")
        if not id_token:
            return
        try:
            claims = await provider.validate_id_token(id_token)
        except Exception as exc:  # IDTokenError, or keys that cannot be fetched
            raise SessionEnded(f"the refreshed ID token is invalid: {exc}") from None
        if sub and claims.get("sub") != sub:
            raise SessionEnded("the refreshed ID token names another subject")

    async def _fetch(self, request: HTTPRequest) -> HTTPResponse:
        client = getattr(self.authenticator, "http_client", None) or AsyncHTTPClient()
        try:
            return await client.fetch(request, raise_error=False)
        except (TimeoutError, HTTPClientError, OSError) as exc:
            raise TransientRefreshError(f"{request.url} cannot be reached: {exc}") from None

    async def _refresh_grant(self, provider: Any, state: dict[str, Any]) -> dict[str, Any]:
        """Redeem the refresh token; :class:`SessionEnded` when the provider refuses it."""
        refresh_token = state.get("refresh_token")
        if not refresh_token:
            raise SessionEnded("the access token expired and there is no refresh token")
        params = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        headers = {"Accept": "application/json"}
        headers.update(self._client_auth(provider, params))
        request = HTTPRequest(
            provider.token_url,
            method="POST",
            headers=headers,
            body=urlencode(params),
            request_timeout=self.timeout,
            connect_timeout=self.timeout,
        )
        self.refresh_count += 1
        response = await self._fetch(request)
        body = _json(response)
        if response.code == 200 and isinstance(body.get("access_token"), str):
            if isinstance(body.get("refresh_token"), str):
                # rotated: should the session end after all, the new one is what to revoke
                state["refresh_token"] = body["refresh_token"]
            return body
        error = str(body.get("error") or "")
        if response.code in (400, 401) and error == "invalid_grant":
            raise SessionEnded(f"{provider.name} refused the refresh token ({error})")
        # invalid_client and friends are the hub's configuration, not the user's session
        raise TransientRefreshError(
            f"{provider.name}'s token endpoint answered {response.code} {error}".strip()
        )

    def _client_auth(self, provider: Any, params: dict[str, str]) -> dict[str, str]:
        """client_secret_basic (RFC 6749 2.3.1: form-encoded id and secret) or _post."""
        if self.authenticator.basic_auth:
            pair = f"{quote(provider.client_id, safe='')}:{quote(provider.client_secret, safe='')}"
            return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        params.update(client_id=provider.client_id, client_secret=provider.client_secret)
        return {}

    async def _userinfo(self, provider: Any, access_token: str) -> dict[str, Any]:
        request = HTTPRequest(
            provider.userdata_url,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            request_timeout=self.timeout,
            connect_timeout=self.timeout,
        )
        response = await self._fetch(request)
        if response.code in (401, 403):
            raise SessionEnded(f"{provider.name}'s userinfo refused the access token")
        body = _json(response)
        if response.code != 200 or not body:
            raise TransientRefreshError(f"{provider.name}'s userinfo answered {response.code}")
        return body

    async def _end_session(self, user: Any, state: dict[str, Any], reason: str) -> None:
        """Remove the tokens from ``auth_state``; revoke the refresh token where possible."""
        kept = {key: state[key] for key in KEPT_AFTER_SIGN_OUT if key in state}
        kept["signed_out"] = {"reason": reason, "at": int(time.time())}
        await user.save_auth_state(kept)
        refresh_token = state.get("refresh_token")
        if not refresh_token:
            return
        try:
            provider = provider_of(self.authenticator, state)
        except SessionEnded:
            return
        if not provider.revocation_url:
            return
        params = {"token": refresh_token, "token_type_hint": "refresh_token"}
        headers = self._client_auth(provider, params)
        request = HTTPRequest(
            provider.revocation_url,
            method="POST",
            headers=headers,
            body=urlencode(params),
            request_timeout=self.timeout,
            connect_timeout=self.timeout,
        )
        try:
            response = await self._fetch(request)
        except TransientRefreshError as exc:
            self.log.info("Could not revoke the refresh token of %s: %s", user.name, exc)
            return
        if response.code != 200:
            self.log.info("Revocation for %s answered %s", user.name, response.code)


def _json(response: HTTPResponse) -> dict[str, Any]:
    try:
        body = json.loads(response.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _expires_at(token_info: Mapping[str, Any], now: float | None = None) -> int | None:
    """Epoch seconds at which the access token of a token response expires."""
    expires_in = _number(token_info.get("expires_in"))
    if expires_in is None:
        return None
    return int((time.time() if now is None else now) + expires_in)
