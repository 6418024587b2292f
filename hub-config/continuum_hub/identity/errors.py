"""What can go wrong when the hub talks to an identity provider: :class:`ProviderError` and kin.

:class:`~continuum_hub.identity.providers.OIDCProvider` raises these, and only these, for
anything a provider does wrong (unreachable, refusing, answering nonsense).  They say *what*
happened, not what to do about it: each caller maps them to its own answer —

* sign-in (:func:`continuum_hub.identity.login.sign_in_error`): a 403 page, whatever the error;
* the refresher (:class:`continuum_hub.identity.tokens.TokenRefresher`): :class:`GrantRejected`
  and :class:`InvalidToken` end the user's session, every other error is retried later.

Messages name the provider, the request and the HTTP status or OAuth error code; they never
carry a token or the body of an answer, so they may go to the log as they are.
"""

from __future__ import annotations

import re

#: an OAuth error code as registered (``invalid_grant``, …); anything else is not repeated
_ERROR_CODE = re.compile(r"[a-z_]{1,64}")


class ProviderError(RuntimeError):
    """The provider could not be used for a request (base class).

    Parameters
    ----------
    message
        The provider, the request and what happened
        (``"token request at egi answered 400 (invalid_grant)"``).
    status
        The HTTP status of the answer, if there was one.
    error
        The OAuth ``error`` code of the answer (RFC 6749 §5.2, RFC 6750 §3.1), if any.
    """

    def __init__(self, message: str, *, status: int | None = None, error: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error = error


class DiscoveryError(ProviderError):
    """The issuer's discovery document is missing or inconsistent."""


class ProviderUnreachable(ProviderError):
    """No answer (connection, timeout), or the provider failed on its side (HTTP 5xx)."""


class ProviderRefused(ProviderError):
    """The provider refused the request (HTTP 4xx) for a reason not covered below
    (``invalid_client``, ``invalid_request``, …): usually the hub's configuration."""


class GrantRejected(ProviderRefused):
    """The token endpoint rejected the grant (``invalid_grant``): the authorization code or
    refresh token is spent, revoked or expired."""


class InvalidToken(ProviderRefused):
    """The userinfo endpoint refused the access token (HTTP 401/403, ``invalid_token``)."""


class BadAnswer(ProviderError):
    """A successful HTTP answer that is not what the protocol says (not a JSON object)."""


class NoAccessToken(BadAnswer):
    """A token response without an access token (or with a malformed ``token_type``)."""


def error_code(value: object) -> str:
    """The OAuth error code of an error answer's ``error`` field (``""`` when malformed)."""
    return value if isinstance(value, str) and _ERROR_CODE.fullmatch(value) else ""


__all__ = [
    "BadAnswer",
    "DiscoveryError",
    "GrantRejected",
    "InvalidToken",
    "NoAccessToken",
    "ProviderError",
    "ProviderRefused",
    "ProviderUnreachable",
    "error_code",
]
