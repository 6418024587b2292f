"""Fixtures of the lab tests (marker ``lab``).

``fake_hub`` (module)
    A tiny HTTP server on 127.0.0.1 standing in for the hub's ``GET /hub/api/continuum/job``;
    answers for ``FakeHub.token`` only; ``fake_hub.answer`` (a dict, or ``None`` for HTTP 500)
    is what it says.
``lab_server`` (module)
    A real ``jupyter server`` with ``continuum_lab`` enabled by the installed config file, its
    job environment (``JOB_ENV``) pointing at ``fake_hub``; ``lab_server.url`` and
    ``lab_server.token``.
Browser tests use ``chromium`` and ``page`` from ``fixtures.browser``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from lab_support import JOB_ENV, FakeHub, LabServer, isolated_jupyter_env, serving, start_lab_server

from continuum_federation.process import free_port


@pytest.fixture(scope="module")
def fake_hub() -> Iterator[FakeHub]:
    """A stand-in for the hub's job endpoint (see the index above)."""
    port = free_port()
    hub = FakeHub(url=f"http://127.0.0.1:{port}/hub/api")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hub.seen.append(self.path)
            if self.path != "/hub/api/continuum/job":
                self.send_error(404)
            elif self.headers.get("Authorization") != f"token {hub.token}":
                self.send_error(403)
            elif hub.answer is None:
                self.send_error(500)
            else:
                body = json.dumps(hub.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler, port):
        yield hub


@pytest.fixture(scope="module")
def lab_server(fake_hub: FakeHub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A real Jupyter server with ``continuum_lab``, as inside a job (see the index above)."""
    home = tmp_path_factory.mktemp("lab-server")
    env = isolated_jupyter_env(
        home,
        **JOB_ENV,
        JUPYTERHUB_API_URL=fake_hub.url,
        JUPYTERHUB_API_TOKEN=fake_hub.token,
    )
    server = start_lab_server(Path(sys.executable), home, env)
    try:
        yield server
    finally:
        server.process.stop()
