"""A small Python client of the workflow service's REST API (``continuum-hub run`` uses it).

In a user's server (or a terminal there) nothing needs configuring: the URL is
``CONTINUUM_WORKFLOWS_URL`` (set in servers by the hub), else the host of
``JUPYTERHUB_API_URL`` with ``/services/workflows`` (where the hub's API and proxy share an
address), and the token ``JUPYTERHUB_API_TOKEN``::

    from continuum_hub.workflows.client import WorkflowsClient, read_notebook

    client = WorkflowsClient.from_environment()
    run = client.submit(read_notebook("work/analysis.ipynb"), {"label": "A"},
                        resources={"site": "alpha", "partition": "batch"})
    client.wait(run["id"])

Notebooks are read below the home folder without following symbolic links
(:func:`~.paths.read_under`): what the service receives is what the user owns.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from . import API_PREFIX, SERVICE_PREFIX
from .paths import read_under
from .snapshot import check_notebook
from .validation import MAX_NOTEBOOK_BYTES

#: run states after which nothing changes (as the service's store)
FINAL_STATES = frozenset({"done", "failed", "cancelled"})


class WorkflowsError(RuntimeError):
    """The service refused a request; the message is its reason."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def service_url(environ: Mapping[str, str] | None = None) -> str:
    """The service's base URL (``…/services/workflows``) from a server's environment."""
    environ = os.environ if environ is None else environ
    url = environ.get("CONTINUUM_WORKFLOWS_URL", "").strip()
    if url:
        return url.rstrip("/")
    hub = environ.get("JUPYTERHUB_API_URL", "")
    if not hub:
        raise WorkflowsError(
            "no workflow service here: set CONTINUUM_WORKFLOWS_URL or give --url", 0
        )
    parts = urlsplit(hub)
    return urlunsplit((parts.scheme, parts.netloc, SERVICE_PREFIX, "", ""))


def read_notebook(path: str, home: str | None = None) -> dict[str, Any]:
    """``{"path", "content"}`` of a notebook below ``home`` (default: ``$HOME``).

    ``path`` may be absolute if it lies below ``home``; symbolic links are never followed.
    """
    home = os.path.realpath(home or os.path.expanduser("~"))
    absolute = os.path.abspath(path)
    rel = os.path.relpath(absolute, home)
    if rel.startswith("..") or os.path.isabs(rel):
        raise WorkflowsError(f"notebook {path!r} is not below your home folder {home}", 400)
    data = read_under(home, rel, "notebook", MAX_NOTEBOOK_BYTES)
    check_notebook(data, rel)
    return {"path": rel, "content": json.loads(data)}


class WorkflowsClient:
    """Calls of the REST API with a hub token.

    Parameters
    ----------
    url
        The service's base (``…/services/workflows``) or its API (``…/api/v1``).
    token
        A hub API token with ``access:services!service=workflows`` (a server's own has it).
    """

    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        base = url.rstrip("/")
        suffix = API_PREFIX.removeprefix(SERVICE_PREFIX)
        self.api = base if base.endswith(suffix) else base + suffix
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"
        self.timeout = timeout

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> WorkflowsClient:
        """A client with the server's URL and ``JUPYTERHUB_API_TOKEN``."""
        environ = os.environ if environ is None else environ
        token = environ.get("JUPYTERHUB_API_TOKEN", "")
        if not token:
            raise WorkflowsError("JUPYTERHUB_API_TOKEN is not set", 0)
        return cls(service_url(environ), token)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(
            method, f"{self.api}/{path}", json=body, timeout=self.timeout
        )
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = response.text
        if response.status_code >= 400:
            message = data.get("message") if isinstance(data, dict) else str(data)[:200]
            raise WorkflowsError(message or f"HTTP {response.status_code}", response.status_code)
        return data

    def submit(
        self,
        notebook: Mapping[str, Any],
        parameters: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Submit a run (``fields``: sweep, max_parallel, resources, inputs, outputs, …)."""
        body = {"notebook": dict(notebook), "parameters": dict(parameters or {}), **fields}
        return dict(self.request("POST", "runs", body))

    def runs(self, state: str | None = None) -> list[dict[str, Any]]:
        return list(self.request("GET", "runs" + (f"?state={state}" if state else ""))["runs"])

    def get(self, run_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"runs/{run_id}"))

    def cancel(self, run_id: str) -> dict[str, Any]:
        return dict(self.request("POST", f"runs/{run_id}/cancel", {}))

    def rerun(self, run_id: str, parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = {"parameters": dict(parameters)} if parameters else {}
        return dict(self.request("POST", f"runs/{run_id}/rerun", body))

    def wait(self, run_id: str, timeout: float = 86400.0, every: float = 5.0) -> dict[str, Any]:
        """Poll until the run is final (or ``timeout`` seconds passed); the last view."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(run_id)
            if run["state"] in FINAL_STATES or time.monotonic() > deadline:
                return run
            time.sleep(every)
