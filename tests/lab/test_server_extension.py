"""The ``continuum_lab`` server extension in a real Jupyter server: login everywhere, hub first."""

from __future__ import annotations

import pytest
import requests
from jupyter_server.base.handlers import APIHandler
from lab_support import FakeHub, LabServer

from continuum_lab.handlers import ROUTES

pytestmark = pytest.mark.lab

HTTP_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")


def implemented(handler: type[APIHandler]) -> list[str]:
    """The HTTP methods a handler class adds to jupyter-server's ``APIHandler``.

    (``APIHandler.options`` answers CORS preflights, without data, for every API route.)
    """
    return [
        m for m in HTTP_METHODS if getattr(handler, m.lower()) is not getattr(APIHandler, m.lower())
    ]


@pytest.mark.parametrize("path,handler", ROUTES, ids=[path for path, _ in ROUTES])
def test_every_method_of_every_route_requires_login(
    lab_server: LabServer, path: str, handler: type[APIHandler]
) -> None:

    methods = implemented(handler)
    assert methods, f"{handler.__name__} implements no method"
    for method in methods:
        response = requests.request(
            method, f"{lab_server.url}continuum/{path}", timeout=10, allow_redirects=False
        )
        assert response.status_code == 403 or (
            response.status_code == 302 and "login" in response.headers.get("Location", "")
        ), f"{method} continuum/{path} without login answered {response.status_code}"
        # every method is wrapped by tornado's @web.authenticated
        assert hasattr(getattr(handler, method.lower()), "__wrapped__"), (handler, method)


def test_a_wrong_token_is_refused(lab_server: LabServer) -> None:
    assert lab_server.get("continuum/session", token="not-the-token").status_code == 403


def test_unknown_paths_are_not_served(lab_server: LabServer) -> None:
    assert lab_server.get("continuum/nothing-here", token=lab_server.token).status_code == 404


def test_the_hub_answer_is_preferred(lab_server: LabServer, fake_hub: FakeHub) -> None:
    fake_hub.answer = {
        "site": "alpha",
        "site_label": "Alpha HPC centre (CPU)",
        "partition": "interactive",
        "job_id": "4242",
        "state": "running",
        "node": "alpha-node7",
        "cores": 2,
        "memory_gb": 4,
        "gpus": 0,
        "walltime_minutes": 60,
        "start_time": "2026-11-21T06:30:00Z",
        "end_time": "2099-01-01T00:00:00Z",
        "remaining_seconds": 100,
    }
    response = lab_server.get("continuum/session", token=lab_server.token)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["source"] == "hub"
    assert data["node"] == "alpha-node7"
    assert data["job_id"] == "4242"
    assert data["settings"] == {"warning_minutes": [15, 5], "refresh_seconds": 60}
    assert data["remaining_seconds"] > 0
    assert response.headers["Cache-Control"] == "no-store"
    assert "/hub/api/continuum/job" in fake_hub.seen


def test_without_the_hub_the_environment_answers(lab_server: LabServer, fake_hub: FakeHub) -> None:
    fake_hub.answer = None  # the hub answers 500
    response = lab_server.get("continuum/session", token=lab_server.token)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["source"] == "environment"
    assert data["node"] == "alpha-node1"
    assert data["site"] == "alpha"
    assert data["environment"] == "default"
    assert data["end_time"] == "2099-01-01T00:00:00Z"


def test_the_panels_polls_are_no_activity_of_the_server(lab_server: LabServer) -> None:
    """An open lab polls session, clusters and runs: that must not keep it from looking idle
    (the idle culler and the instructor's view read the server's last activity)."""

    def last_activity() -> str:
        return str(lab_server.get("api/status", token=lab_server.token).json()["last_activity"])

    lab_server.get("api/contents", token=lab_server.token)  # the user's own request counts
    before = last_activity()
    for route in ("session", "clusters", "workflows/runs"):
        lab_server.get(f"continuum/{route}", token=lab_server.token)
    assert last_activity() == before
    lab_server.get("api/contents", token=lab_server.token)
    assert last_activity() != before
