"""Strict validation of OpenID Connect ID tokens against the issuer's published keys.

oauthenticator reads user data from the userinfo endpoint and never checks the ID token it is
given.  :class:`IDTokenValidator` does what OpenID Connect Core §3.1.3.7 asks: the signature
against the issuer's JWKS, with an allow-list of algorithms (never ``none``, never HMAC with a
public key), and the ``iss``, ``aud``, ``azp``, ``exp``, ``iat`` and (at sign-in) ``nonce``
claims.  Keys are fetched
from the ``jwks_uri`` again when a token names an unknown key id, so a key rotation at the
provider is picked up without a restart (at most once per ``refetch_interval``).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import jwt

#: asymmetric algorithms only: an HMAC "signature" could be made with the public key
DEFAULT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")


class IDTokenError(ValueError):
    """The ID token is not valid; the message says why (for logs, not for users)."""


class IDTokenValidator:
    """Validate the ID tokens of one issuer for one client.

    Parameters
    ----------
    issuer
        The expected ``iss``.
    client_id
        The expected audience (and ``azp``).
    fetch_jwks
        Coroutine returning the issuer's JWKS document.
    algorithms
        Signature algorithms accepted.
    leeway
        Seconds of clock skew tolerated for ``exp`` and ``iat``.
    refetch_interval
        Minimum seconds between two fetches of the JWKS for unknown key ids.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        fetch_jwks: Callable[[], Awaitable[dict[str, Any]]],
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        leeway: float = 0.0,
        refetch_interval: float = 10.0,
    ) -> None:
        unsafe = [a for a in algorithms if a == "none" or a.startswith("HS")]
        if unsafe:
            raise ValueError(f"algorithms {unsafe} must not be accepted for ID tokens")
        self.issuer = issuer
        self.client_id = client_id
        self.fetch_jwks = fetch_jwks
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.refetch_interval = refetch_interval
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._inflight: asyncio.Future[None] | None = None

    async def _refresh_keys(self) -> None:
        """Fetch the JWKS; callers that arrive while a fetch runs wait for that one.

        Without the shared fetch, a burst of sign-ins on a freshly started hub (a workshop's
        first minute) found no key while the first fetch was under way, skipped their own
        (the refetch interval had not passed) and were refused.
        """
        if self._inflight is None:
            self._fetched_at = time.monotonic()
            self._inflight = asyncio.ensure_future(self._fetch_keys())
        fetch = self._inflight
        try:
            await asyncio.shield(fetch)
        finally:
            if fetch.done() and self._inflight is fetch:
                self._inflight = None

    async def _fetch_keys(self) -> None:
        document = await self.fetch_jwks()
        keys: dict[str | None, jwt.PyJWK] = {}
        for data in document.get("keys", []):
            if data.get("use", "sig") != "sig":
                continue
            try:
                keys[data.get("kid")] = jwt.PyJWK(data)
            except jwt.PyJWTError:
                continue  # a key type this library cannot use is no key for us
        self._keys = keys

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        due = time.monotonic() - self._fetched_at >= self.refetch_interval
        if kid not in self._keys and (due or self._inflight is not None):
            await self._refresh_keys()  # first use, or the provider rotated its keys
        key = self._keys.get(kid)
        if key is None and kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        if key is None:
            raise IDTokenError(f"no key {kid!r} in the issuer's JWKS")
        return key

    async def validate(self, token: str, nonce: str | None = None) -> dict[str, Any]:
        """The token's claims, once everything checks out.

        Parameters
        ----------
        token
            The compact JWT.
        nonce
            The nonce sent in this sign-in's authorization request: the token must carry the
            same.  ``None`` for tokens not bound to a sign-in (refresh responses).

        Raises
        ------
        IDTokenError
            With the reason.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise IDTokenError(f"not a JWT: {exc}") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise IDTokenError(f"signature algorithm {algorithm!r} is not accepted")
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                audience=self.client_id,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise IDTokenError(f"{type(exc).__name__}: {exc}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.client_id:
            raise IDTokenError(f"authorized party {azp!r} is not this client")
        if nonce is not None:
            got = claims.get("nonce")
            if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
                raise IDTokenError("nonce differs from the one sent at sign-in (replayed token?)")
        # PyJWT refuses an iat in the future (ImmatureSignatureError) and a past exp
        return claims
