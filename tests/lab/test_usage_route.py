"""The usage route (``continuum/usage``) on a real Jupyter server, for the *Usage* panel.

The hub is a small stand-in on 127.0.0.1 (the boundary of this unit) for
``GET /hub/api/continuum/usage``: it answers a report of the contract's shape (issue 12, §5)
for its one token's user, the jobs as CSV for ``format=csv``, and records every query that
reaches it; it can be switched to fail (500) or to lack the route (404).  The real handler, on
a ledger seeded with alice's and bob's jobs, is exercised by ``tests/browser/test_usage_panel.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from lab_support import LabServer, call, send_json, server_of_hub, serving

from continuum_federation.process import free_port
from continuum_lab.remote import ServiceError
from continuum_lab.usage import usage_query

pytestmark = pytest.mark.lab

ROUTE = "/hub/api/continuum/usage"
CSV = b"site,job_id,kind,user,core_hours\r\nalpha,101,server,alice,2.0\r\n"


def report(query: dict[str, list[str]]) -> dict[str, Any]:
    """alice's report in the contract's shape, its period taken from the query."""
    numbers = {"core_hours": 2.0, "gpu_hours": 0.0, "energy_kwh": 0.03, "co2e_kg": 0.002}
    return {
        "user": "alice",
        "from": query.get("from", ["2026-12-01T00:00:00+00:00"])[0],
        "to": query.get("to", ["2026-12-05T10:00:00+00:00"])[0],
        "totals": {"jobs": 1, **numbers, "estimated": False},
        "by_day": [{"day": "2026-12-02", "jobs": 1, **numbers}],
        "by_site": [{"site": "alpha", "jobs": 1, **numbers}],
        "by_kind": [{"kind": "server", "jobs": 1, **numbers}],
        "by_vo": [{"vo": "vo.hep.example", "jobs": 1, **numbers}],
        "jobs": [{"site": "alpha", "job_id": "101", "kind": "server", "user": "alice"}],
        "budgets": [],
        "delayed": [],
    }


@dataclass
class StandIn:
    """The stand-in hub: its token, the queries that reached it, and how it fails."""

    url: str
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    seen: list[dict[str, list[str]]] = field(default_factory=list)
    status: int = 200


@pytest.fixture(scope="module")
def hub() -> Iterator[StandIn]:
    """The stand-in hub on a free port (see the module's docstring)."""
    port = free_port()
    fake = StandIn(url=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if parts.path != ROUTE or fake.status == 404:
                send_json(self, 404, {"status": 404, "message": "Not Found"})
            elif self.headers.get("Authorization") != f"token {fake.token}":
                send_json(self, 403, {"status": 403, "message": "no such token"})
            elif "user" in query:
                send_json(self, 403, {"status": 403, "message": "only admins name a user"})
            elif fake.status != 200:
                send_json(self, fake.status, {"status": fake.status, "message": "Traceback …"})
            elif query.get("from") == ["1000-01-01"]:
                send_json(self, 400, {"status": 400, "message": "at most 366 days"})
            else:
                fake.seen.append(query)
                if query.get("format") == ["csv"]:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/csv")
                    self.send_header("Content-Length", str(len(CSV)))
                    self.end_headers()
                    self.wfile.write(CSV)
                else:
                    send_json(self, 200, report(query))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler, port):
        yield fake


@pytest.fixture(scope="module")
def server(hub: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A Jupyter server for alice whose hub is the stand-in."""
    with server_of_hub(tmp_path_factory.mktemp("lab-usage"), hub.url, hub.token) as lab:
        yield lab


def test_the_report_comes_from_the_hub_with_the_panel_settings(
    server: LabServer, hub: StandIn
) -> None:
    answer = call(server, "GET", "usage")
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["user"] == "alice"
    assert [j["job_id"] for j in data["jobs"]] == ["101"]
    assert data["totals"]["core_hours"] == 2.0
    assert data["refresh_seconds"] == 60
    assert answer.headers["Cache-Control"] == "no-store"
    assert hub.seen[-1] == {}  # this month: the hub's default


def test_filters_are_passed_on_and_user_never(server: LabServer, hub: StandIn) -> None:
    answer = call(server, "GET", "usage?from=2026-11-01&to=2026-11-30&site=beta&kind=dask&user=bob")
    assert answer.status_code == 200, answer.text
    assert hub.seen[-1] == {
        "from": ["2026-11-01"],
        "to": ["2026-11-30"],
        "site": ["beta"],
        "kind": ["dask"],
    }
    assert answer.json()["from"] == "2026-11-01"


def test_csv_is_passed_on_as_a_download(server: LabServer, hub: StandIn) -> None:
    answer = call(server, "GET", "usage?format=csv")
    assert answer.status_code == 200, answer.text
    assert answer.content == CSV
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in answer.headers["Content-Disposition"]
    assert hub.seen[-1] == {"format": ["csv"]}


@pytest.mark.parametrize(
    "status,answered,said",
    [(500, 502, "usage report failed"), (404, 503, "does not report usage")],
    ids=["hub-fails", "hub-without-usage"],
)
def test_hub_failures_become_clear_errors(
    server: LabServer, hub: StandIn, status: int, answered: int, said: str
) -> None:
    hub.status = status
    try:
        answer = call(server, "GET", "usage")
    finally:
        hub.status = 200
    assert answer.status_code == answered, answer.text
    assert said in answer.json()["message"]
    assert "Traceback" not in answer.text


def test_the_hubs_refusal_of_a_range_is_passed_on(server: LabServer) -> None:
    answer = call(server, "GET", "usage?from=1000-01-01")
    assert answer.status_code == 400
    assert answer.json()["message"] == "at most 366 days"


@pytest.mark.parametrize(
    "arguments,said",
    [
        ({"from": "last tuesday"}, "not a valid from"),
        ({"to": "2026-12-01; DROP"}, "not a valid to"),
        ({"site": "../../admin"}, "not a valid site"),
        ({"kind": "x" * 200}, "not a valid kind"),
        ({"format": "xlsx"}, "format must be json or csv"),
    ],
    ids=["words", "injection", "path", "long", "format"],
)
def test_bad_filters_are_refused_before_the_hub(arguments: dict[str, str], said: str) -> None:
    with pytest.raises(ServiceError) as refused:
        usage_query(arguments)
    assert refused.value.status == 400
    assert said in refused.value.message


def test_a_bad_filter_through_the_route_never_reaches_the_hub(
    server: LabServer, hub: StandIn
) -> None:
    before = len(hub.seen)
    answer = call(server, "GET", "usage?site=..%2F..%2Fadmin")
    assert answer.status_code == 400
    assert len(hub.seen) == before
