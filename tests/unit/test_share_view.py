"""``continuum_widgets.sharing.share_view``: a share link for the kernel's own server.

A small HTTP server on 127.0.0.1 answers as the hub's share-code API would (JupyterHub's reply
model); the real hub is used in ``tests/integration/test_workshop_sharing.py``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from continuum_widgets.sharing import SharingError, share_view

pytestmark = pytest.mark.workshops


class _Hub(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(
            {"path": self.path, "auth": self.headers["Authorization"], "body": body}
        )
        if self.status != 200:
            reply = {"status": self.status, "message": "Do not have permission to grant share"}
        else:
            reply = {
                "id": "sc_7",
                "expires_at": "2026-12-06T10:00:00Z",
                "accept_url": "/hub/accept-share?code=secret-code",
                "full_accept_url": None,
            }
        data = json.dumps(reply).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hub() -> Iterator[str]:
    _Hub.seen = []
    _Hub.status = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    server.shutdown()
    server.server_close()


def _env(api: str, **more: str) -> dict[str, str]:
    env = {"JUPYTERHUB_API_URL": api, "JUPYTERHUB_API_TOKEN": "tok", "JUPYTERHUB_USER": "alice"}
    env.update(more)
    return env


def test_link_for_the_default_server_lands_on_the_view(hub: str) -> None:
    link = share_view(
        "proxy/5006/explore",
        3600,
        env=_env(hub, JUPYTERHUB_SERVICE_PREFIX="/user/alice/"),
    )
    (call,) = _Hub.seen
    assert call["path"] == "/hub/api/share-codes/alice/"  # default server: trailing "/"
    assert call["auth"] == "token tok" and call["body"] == {"expires_in": 3600}
    url = urlsplit(link.url)
    assert url.path == "/hub/accept-share"
    assert parse_qs(url.query) == {
        "code": ["secret-code"],
        "next": ["/user/alice/proxy/5006/explore"],
    }
    assert (link.id, link.expires_at) == ("sc_7", "2026-12-06T10:00:00Z")
    assert link.url in link._repr_html_()


def test_named_server_and_public_hub_url(hub: str) -> None:
    link = share_view(
        env=_env(
            hub, JUPYTERHUB_SERVER_NAME="gpu", JUPYTERHUB_PUBLIC_HUB_URL="https://hub.example/hub/"
        )
    )
    assert _Hub.seen[0]["path"] == "/hub/api/share-codes/alice/gpu"
    view = share_view(notebook="work/my view.ipynb", env=_env(hub))
    assert parse_qs(urlsplit(view.url).query)["next"] == [
        "/user/alice/panel-preview/render/work/my%20view.ipynb"
    ]
    assert link.url.startswith("https://hub.example/hub/accept-share?code=secret-code&next=")
    assert parse_qs(urlsplit(link.url).query)["next"] == ["/user/alice/gpu/"]


def test_refusals_are_clear(hub: str) -> None:
    _Hub.status = 403
    with pytest.raises(SharingError, match="does not let servers share themselves"):
        share_view(env=_env(hub))
    with pytest.raises(SharingError, match="not a JupyterHub server"):
        share_view(env={"JUPYTERHUB_USER": "alice"})
    with pytest.raises(SharingError, match="between 60 seconds"):
        share_view(expires_in=10, env=_env(hub))
    with pytest.raises(SharingError, match="not an http"):
        share_view(env=_env("file:///etc/passwd"))
    with pytest.raises(SharingError, match="did not answer"):
        share_view(env=_env("http://127.0.0.1:9/hub/api"), timeout=2)
