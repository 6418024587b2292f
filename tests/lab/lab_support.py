"""Helpers of the lab tests: a fake hub, a real Jupyter server, the job environment, and a
module-scoped local Dask Gateway (:func:`local_gateway_fixture`)."""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from continuum_federation.process import ManagedProcess, free_port
from fixtures.local_gateway import LocalGateway, local_gateway

TIMEOUT = 10.0
JOB_ENV = {
    "CONTINUUM_SITE": "alpha",
    "CONTINUUM_SITE_LABEL": "Alpha HPC centre (CPU)",
    "CONTINUUM_PARTITION": "interactive",
    "CONTINUUM_CORES": "2",
    "CONTINUUM_MEMORY_GB": "4",
    "CONTINUUM_GPUS": "0",
    "CONTINUUM_WALLTIME_MINUTES": "60",
    "CONTINUUM_JOB_START": "2026-11-21T06:30:00Z",
    "CONTINUUM_JOB_END": "2099-01-01T00:00:00Z",
    "SLURM_JOB_ID": "4242",
    "SLURMD_NODENAME": "alpha-node1",
    "JUPYTERHUB_USER": "alice",
}


@dataclass
class FakeHub:
    """State of the fake hub: what it answers, and the requests it saw."""

    url: str
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    answer: dict[str, Any] | None = None
    seen: list[str] = field(default_factory=list)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], port: int) -> Iterator[None]:
    """Serve HTTP on ``127.0.0.1:port`` with ``handler`` (a thread) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    """Answer ``handler``'s request with ``status`` and ``body`` as JSON (none for ``None``)."""
    data = b"" if body is None else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def isolated_jupyter_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment whose user-level Jupyter config and data cannot leak into a test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "CONTINUUM"))}
    for name in ("config", "data", "runtime"):
        (home / name).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        **extra,
    )
    return env


@dataclass
class LabServer:
    url: str
    token: str
    process: ManagedProcess

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        """GET ``path`` below the server's base URL, with ``token`` when given."""
        headers = {"Authorization": f"token {token}"} if token else {}
        return requests.get(
            f"{self.url}{path}", headers=headers, timeout=TIMEOUT, allow_redirects=False, **kwargs
        )


def start_lab_server(
    python: Path, home: Path, env: dict[str, str], app: str = "jupyter_server"
) -> LabServer:
    """Start ``python -m <app>`` (jupyter_server or jupyterlab) on a free loopback port."""
    port = free_port()
    token = secrets.token_hex(16)
    argv = [
        str(python),
        "-m",
        app,
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={home}",
        "--ServerApp.base_url=/user/alice/",
    ]
    process = ManagedProcess(f"{app}-{port}", argv, home / "log", env=env, cwd=home)
    url = f"http://127.0.0.1:{port}/user/alice/"

    def ready() -> bool:
        try:
            return requests.get(f"{url}api/status", timeout=1).status_code in (200, 403)
        except requests.RequestException:
            return False

    process.start_ready(ready, timeout=90)
    return LabServer(url=url, token=token, process=process)


@contextmanager
def server_of_hub(home: Path, hub_url: str, token: str) -> Iterator[LabServer]:
    """A Jupyter server for alice in ``home``, as in a job (:data:`JOB_ENV`), whose hub (and
    so whose hub services) is at ``hub_url`` and whose API token is ``token``; stopped after."""
    env = isolated_jupyter_env(
        home, **JOB_ENV, JUPYTERHUB_API_URL=f"{hub_url}/hub/api", JUPYTERHUB_API_TOKEN=token
    )
    lab = start_lab_server(Path(sys.executable), home, env)
    try:
        yield lab
    finally:
        lab.process.stop()


def local_gateway_fixture(max_workers: int) -> Callable[..., Iterator[LocalGateway]]:
    """A module-scoped ``gateway`` fixture: a local ``dask-gateway-server``
    (:func:`fixtures.local_gateway.local_gateway`) whose clusters get at most ``max_workers``.

    Assign it in a test module: ``gateway = local_gateway_fixture(max_workers=2)``.
    """

    @pytest.fixture(scope="module")
    def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGateway]:
        with local_gateway(tmp_path_factory.mktemp("gateway"), max_workers=max_workers) as running:
            yield running

    return gateway


def call(server: LabServer, method: str, path: str, body: Any = None) -> requests.Response:
    """A request to ``server``'s ``continuum/<path>`` routes as its owner."""
    return requests.request(
        method,
        f"{server.url}continuum/{path}",
        json=body,
        headers={"Authorization": f"token {server.token}"},
        timeout=60,
    )


def listed(server: LabServer) -> dict[str, dict[str, Any]]:
    """The clusters ``GET continuum/clusters`` lists, by name."""
    response = call(server, "GET", "clusters")
    assert response.status_code == 200, response.text
    return {c["name"]: c for c in response.json()["clusters"]}
