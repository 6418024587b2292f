"""Credentials in request URIs never reach the hub's log (continuum_hub.logscrub)."""

from __future__ import annotations

import logging

import pytest
from tornado.log import gen_log

from continuum_hub.logscrub import CredentialScrubber, install_log_scrubber, scrub


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "403 GET /hub/api/users/x?token=abc123 (127.0.0.1)",
            "403 GET /hub/api/users/x?token=[secret] (127.0.0.1)",
            id="api-token",
        ),
        pytest.param(
            "400 GET /hub/oauth_callback?code=C0DE&state=ST4TE&iss=http://idp (127.0.0.1)",
            "400 GET /hub/oauth_callback?code=[secret]&state=[secret]&iss=http://idp (127.0.0.1)",
            id="callback",
        ),
        pytest.param("GET /x?Access_Token=a.b.c", "GET /x?Access_Token=[secret]", id="case"),
        pytest.param("GET /hub/home?next=/tokens", "GET /hub/home?next=/tokens", id="no-secret"),
        pytest.param("token=abc at start", "token=abc at start", id="not-a-query"),
        pytest.param("GET /x?mytoken=keep", "GET /x?mytoken=keep", id="other-name"),
        pytest.param(
            "302 GET /hub/continuum/join/Zk3_x-9aQ/start (alice@127.0.0.1)",
            "302 GET /hub/continuum/join/[secret]/start (alice@127.0.0.1)",
            id="join-code-in-path",
        ),
        pytest.param(
            "302 GET /hub/login?next=%2Fhub%2Fcontinuum%2Fjoin%2FZk3_x-9aQ",
            "302 GET /hub/login?next=%2Fhub%2Fcontinuum%2Fjoin%2F[secret]",
            id="join-code-in-next",
        ),
        pytest.param(
            "GET /hub/continuum/join/Zk3/guest?code=G1 (1.2.3.4)",
            "GET /hub/continuum/join/[secret]/guest?code=[secret] (1.2.3.4)",
            id="guest-code",
        ),
        pytest.param(
            "GET /hub/continuum/events/0a1b", "GET /hub/continuum/events/0a1b", id="event"
        ),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_tornado_warning_of_a_refused_request_is_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    install_log_scrubber()
    summary = "GET /hub/api/users/x?token=s3cr3t-t0ken (127.0.0.1)"
    with caplog.at_level(logging.WARNING, logger="tornado.general"):
        # the call tornado's RequestHandler.log_exception makes for an HTTPError
        gen_log.warning("%d %s: " + "Action is not authorized", 403, summary)
    assert "s3cr3t-t0ken" not in caplog.text
    assert "403 GET /hub/api/users/x?token=[secret] (127.0.0.1)" in caplog.text


def test_installing_twice_keeps_one_filter() -> None:
    install_log_scrubber(("continuum-test",))
    install_log_scrubber(("continuum-test",))
    logger = logging.getLogger("continuum-test")
    assert sum(isinstance(f, CredentialScrubber) for f in logger.filters) == 1
