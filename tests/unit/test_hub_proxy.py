"""``continuum_hub.proxy.ContinuumProxy``: route updates that survive a busy hub.

A threaded HTTP server stands in for configurable-http-proxy's API: it keeps connections alive
and closes one after ``IDLE`` seconds without a request, as Node's ``http`` server does after
5 s.  Blocking the event loop longer than that between two requests is the storm's busy hub:
JupyterHub's own client reuses the connection the server closed and the request fails (the
race this class removes); ``ContinuumProxy`` opens a connection per request and never fails.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import pytest
from jupyterhub.proxy import ConfigurableHTTPProxy

from continuum_hub.proxy import ContinuumProxy

#: seconds the fake API keeps an idle connection open (Node: 5 s)
IDLE = 0.2
TOKEN = "proxy-token"


class FakeProxyApi(ThreadingHTTPServer):
    """configurable-http-proxy's routes API in memory: what it received and on how many
    connections; ``hang`` requests are held longer than any client waits."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RouteHandler)
        self.routes: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.connections = 0
        self.hang = 0
        self.released = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class RouteHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Node
    timeout = IDLE  # an idle connection is closed after this (the read times out)
    server: FakeProxyApi

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads ``requests`` instead."""

    def _answer(self, status: int, body: Any = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append((self.command, self.path))
        if self.server.hang:
            self.server.hang -= 1
            self.server.released.wait(10)
        if self.headers.get("Authorization") != f"token {TOKEN}":
            self._answer(403)
            return
        path = self.path.removeprefix("/api/routes")
        if self.command == "POST":
            self.server.routes[path] = json.loads(body)
            self._answer(201)
        elif self.command == "DELETE":
            self.server.routes.pop(path, None)
            self._answer(204)
        else:
            self._answer(200, self.server.routes)

    do_GET = do_POST = do_DELETE = _handle


@pytest.fixture
def api() -> Iterator[FakeProxyApi]:
    server = FakeProxyApi()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.released.set()
    server.shutdown()
    server.server_close()


def proxy_for(api: FakeProxyApi, cls: type[ConfigurableHTTPProxy] = ContinuumProxy, **kw: Any):
    return cls(api_url=api.url, auth_token=TOKEN, should_start=False, **kw)


def retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]


async def test_a_busy_hub_adds_routes_without_failed_attempts(api, caplog):
    proxy = proxy_for(api)
    with caplog.at_level(logging.WARNING):
        await proxy.add_route("/user/ann/", "http://127.0.0.1:9001", {"user": "ann"})
        # the event loop blocked (on purpose) while the API closes the idle connection
        time.sleep(3 * IDLE)  # noqa: ASYNC251
        await proxy.add_route("/user/bob/", "http://127.0.0.1:9002", {"user": "bob"})
    assert retries(caplog) == []
    assert api.requests == [
        ("POST", "/api/routes/user/ann"),
        ("POST", "/api/routes/user/bob"),
    ]
    assert api.connections == 2  # one each: nothing reused
    routes = await proxy.get_all_routes()  # the answer's body is read after its connection closed
    assert routes["/user/bob/"]["target"] == "http://127.0.0.1:9002"
    assert routes["/user/ann/"]["data"] == {"user": "ann"}


async def test_jupyterhubs_own_client_reuses_the_closed_connection(api, caplog):
    """The race itself, with JupyterHub's client: the request after the blocked loop fails on
    the connection the API closed and is retried."""
    proxy = proxy_for(api, ConfigurableHTTPProxy)
    with caplog.at_level(logging.WARNING):
        await proxy.add_route("/user/ann/", "http://127.0.0.1:9001", {})
        time.sleep(3 * IDLE)  # noqa: ASYNC251 - the busy hub, as above
        await proxy.add_route("/user/bob/", "http://127.0.0.1:9002", {})
    assert len(retries(caplog)) == 1, caplog.text
    assert "/user/bob" in api.routes


async def test_a_hanging_attempt_is_retried_after_its_timeout(api, caplog):
    proxy = proxy_for(api, api_request_timeout=0.3)
    api.hang = 1  # the first request is held past the client's timeout
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        await proxy.add_route("/user/cy/", "http://127.0.0.1:9003", {})
    assert time.monotonic() - started < 5  # JupyterHub's client would wait 5 minutes
    assert len(retries(caplog)) == 1 and "/user/cy" in api.routes
    assert api.requests.count(("POST", "/api/routes/user/cy")) == 2


async def test_refusals_are_raised_at_once_and_retries_end(api):
    proxy = ContinuumProxy(api_url=api.url, auth_token="wrong", should_start=False)
    with pytest.raises(aiohttp.ClientResponseError) as refused:
        await proxy.add_route("/user/dee/", "http://127.0.0.1:9004", {})
    assert refused.value.status == 403 and len(api.requests) == 1
    # nothing answers: the attempts end after api_retry_timeout
    gone = ContinuumProxy(
        api_url="http://127.0.0.1:9", auth_token=TOKEN, should_start=False, api_retry_timeout=0.5
    )
    with pytest.raises(TimeoutError, match="Repeated api_request"):
        await gone.add_route("/user/dee/", "http://127.0.0.1:9004", {})
