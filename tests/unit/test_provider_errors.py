"""The provider client's typed errors, and what sign-in and the refresher each make of them.

``OIDCProvider`` runs against a fake provider on 127.0.0.1 (``fixtures.fake_idp``) that gives
the answer under test; sign-in's mapping (``login.sign_in_error``) and the refresher's
(``tokens.refresh_answer``) are tables over every error class.  The same answers from the real
provider, through the real hub, are in ``tests/security/test_forged_tokens.py`` and
``tests/integration/test_living_tokens.py``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tornado import web

from continuum_hub.identity.errors import (
    BadAnswer,
    DiscoveryError,
    GrantRejected,
    InvalidToken,
    NoAccessToken,
    ProviderError,
    ProviderRefused,
    ProviderUnreachable,
)
from continuum_hub.identity.login import sign_in_error
from continuum_hub.identity.providers import OIDCProvider
from continuum_hub.identity.tokens import SessionEnded, TransientRefreshError, refresh_answer
from fixtures.fake_idp import FakeIdP, fake_idp, hub_authenticator

pytestmark = pytest.mark.identity

REFRESH_TOKEN = "rt-secret-value"


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdP]:
    with fake_idp() as provider:
        yield provider


@pytest.fixture
def provider(idp: FakeIdP, tmp_path: Path) -> OIDCProvider:
    """The fake provider as the primary ``OIDCProvider`` of a real authenticator."""
    idp.reset()
    return hub_authenticator(idp, tmp_path).primary_provider


# ---- what the provider client raises ----------------------------------------------------

ANSWERS = {
    "refresh token refused (400)": ("/token", 400, {"error": "invalid_grant"}, GrantRejected),
    "refresh token refused (401)": ("/token", 401, {"error": "invalid_grant"}, GrantRejected),
    "client refused": ("/token", 401, {"error": "invalid_client"}, ProviderRefused),
    "bad request": ("/token", 400, {"error": "invalid_request"}, ProviderRefused),
    "token endpoint down": ("/token", 503, b"", ProviderUnreachable),
    "token endpoint fails": ("/token", 500, b"oops", ProviderUnreachable),
    "token answer not JSON": ("/token", 200, b"<html>hello</html>", BadAnswer),
    "token answer a list": ("/token", 200, b"[]", BadAnswer),
    "error with 200": ("/token", 200, {"error": "x", "error_description": "y"}, NoAccessToken),
    "token_type not text": ("/token", 200, {"access_token": "a", "token_type": 1}, NoAccessToken),
    "userinfo refuses (401)": ("/me", 401, {"error": "invalid_token"}, InvalidToken),
    "userinfo forbids (403)": ("/me", 403, {"error": "insufficient_scope"}, InvalidToken),
    "userinfo bad request": ("/me", 400, {}, ProviderRefused),
    "userinfo a JSON list": ("/me", 200, b"[]", BadAnswer),
    "userinfo fails": ("/me", 502, {}, ProviderUnreachable),
}


@pytest.mark.parametrize("case", list(ANSWERS), ids=list(ANSWERS))
async def test_each_answer_raises_its_error(idp: FakeIdP, provider: OIDCProvider, case: str):
    path, status, body, expected = ANSWERS[case]
    idp.replace[path] = (status, body)
    with pytest.raises(ProviderError) as caught:
        if path == "/token":
            await provider.refresh(REFRESH_TOKEN)
        else:
            await provider.userinfo("at-1")
    assert type(caught.value) is expected
    message = str(caught.value)
    assert message.startswith(("token request at demo", "userinfo at demo")), message
    assert REFRESH_TOKEN not in message and "at-1" not in message
    assert "oops" not in message and "<html>" not in message  # bodies stay out of messages
    if status >= 400:
        assert caught.value.status == status
        assert f"answered {status}" in message


async def test_refusals_carry_the_oauth_error_code_only_when_well_formed(
    idp: FakeIdP, provider: OIDCProvider
):
    idp.replace["/token"] = (400, {"error": "invalid_grant"})
    with pytest.raises(GrantRejected) as caught:
        await provider.refresh(REFRESH_TOKEN)
    assert caught.value.error == "invalid_grant" and "(invalid_grant)" in str(caught.value)
    idp.replace["/token"] = (400, {"error": "invalid_grant\n[E] forged log line"})
    with pytest.raises(ProviderRefused) as caught:
        await provider.refresh(REFRESH_TOKEN)
    assert type(caught.value) is ProviderRefused and caught.value.error == ""
    assert "forged" not in str(caught.value)


async def test_unreachable_provider(provider: OIDCProvider):
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    provider.token_url = f"http://127.0.0.1:{port}/token"
    with pytest.raises(ProviderUnreachable, match=r"token request at demo: .*Error"):
        await provider.refresh(REFRESH_TOKEN, request_timeout=5)


async def test_successful_answers(idp: FakeIdP, provider: OIDCProvider):
    tokens = await provider.refresh("rt-1")
    assert tokens["access_token"] == "at-2" and idp.refreshes == 1
    claims = await provider.validate_id_token(tokens["id_token"])  # keys from the jwks_uri
    assert claims["sub"] == "sub-alice"
    assert (await provider.userinfo("at-2", "bearer"))["sub"] == "sub-alice"
    assert await provider.revoke("rt-2") is True and idp.revoked == ["rt-2"]
    provider.revocation_url = ""
    assert await provider.revoke("rt-2") is False and idp.revoked == ["rt-2"]


# ---- what sign-in makes of them ----------------------------------------------------------

ERRORS = {
    "grant rejected": GrantRejected("token request at demo answered 400 (invalid_grant)"),
    "refused": ProviderRefused("token request at demo answered 401 (invalid_client)"),
    "unreachable": ProviderUnreachable("token request at demo: ConnectionRefusedError"),
    "bad answer": BadAnswer("userinfo at demo: the answer is not a JSON object"),
    "no access token": NoAccessToken("token request at demo: the answer has no access token"),
    "invalid token": InvalidToken("userinfo at demo answered 401 (invalid_token)"),
    "discovery": DiscoveryError("cannot read the discovery document at …"),
}
SIGN_IN = {
    "no access token": "The identity provider returned no access token.",
}
REFRESH_ENDS_SESSION = {
    "grant rejected": "demo refused the refresh token",
    "invalid token": "demo's userinfo refused the access token",
}


@pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
def test_sign_in_answers_403_and_logs_the_reason(case: str, caplog):
    error = ERRORS[case]
    with caplog.at_level(logging.WARNING, logger="test-sign-in"):
        answer = sign_in_error(error, logging.getLogger("test-sign-in"))
    assert isinstance(answer, web.HTTPError) and answer.status_code == 403
    assert answer.log_message == SIGN_IN.get(case, "Your sign-in could not be completed.")
    assert caplog.messages == [f"Sign-in refused: {error}"]


@pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
def test_refresher_ends_the_session_or_retries_later(case: str):
    provider = OIDCProvider(name="demo")
    answer = refresh_answer(provider, ERRORS[case])
    if case in REFRESH_ENDS_SESSION:
        assert isinstance(answer, SessionEnded)
        assert str(answer).startswith(REFRESH_ENDS_SESSION[case])
    else:
        assert isinstance(answer, TransientRefreshError) and str(answer) == str(ERRORS[case])
