"""The catalogue routes (``continuum/catalogue/…``) on a real Jupyter server.

The ``catalogue`` service is a small stand-in on 127.0.0.1 (the boundary of this unit): it
holds three entries, answers search by a word in the title and the ``site`` filter, one entry by
id (404 for the rest), and a *make available* request that goes from ``requested`` to
``replicating``; it records every request that reaches it.  The real service is tested with the
hub in ``tests/integration/``.  The server finds it as in a hub: below the hub's base derived
from ``JUPYTERHUB_API_URL``, with the server's ``JUPYTERHUB_API_TOKEN``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from lab_support import LabServer, call, send_json, server_of_hub, serving

from continuum_federation.process import free_port
from continuum_lab.catalogue import CatalogueError, CatalogueManager

pytestmark = [pytest.mark.lab, pytest.mark.catalogue]

PREFIX = "/services/catalogue/api/v1/"
ENTRIES = {
    "demo:beta/radio/obs-0001.fits": {"title": "radio obs 1", "sites": ["beta"]},
    "demo:alpha/hep/run-7.root": {"title": "hep run 7", "sites": ["alpha"]},
    "demo:both/radio/cube.zarr": {"title": "radio cube", "sites": ["alpha", "beta"]},
}


@dataclass
class StandIn:
    """The stand-in's token, what reached it (method, path, query, body), and its requests."""

    url: str
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    seen: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)
    polls: int = 0
    broken: bool = False


@contextmanager
def broken(fake: StandIn) -> Iterator[None]:
    """The stand-in fails its searches (500) and has no workflows service, for a while."""
    fake.broken = True
    try:
        yield
    finally:
        fake.broken = False


def entry(entry_id: str, site: str = "") -> dict[str, Any]:
    """An entry as the service sends it; its code opens the replica at ``site``."""
    sites = ENTRIES[entry_id]["sites"]
    chosen = site or sites[0]
    path = f"/data/{chosen}/{entry_id.split(':', 1)[1]}"
    return {
        "id": entry_id,
        "title": ENTRIES[entry_id]["title"],
        "sites": sites,
        "replicas": [
            {"site": s, "location": "demo", "path": path, "state": "available"} for s in sites
        ],
        "access": {"language": "python", "code": f"open({path!r})"},
    }


def respond(fake: StandIn, method: str, path: str, query: dict[str, list[str]], body: Any):
    """The stand-in's answer: ``(status, JSON)``."""
    if fake.broken and path.startswith("search"):
        return 500, {"message": "Traceback (most recent call last): ..."}
    if (method, path) == ("GET", "search"):
        words, sites = query.get("q", [""])[0].split(), query.get("site", [])
        found = [
            entry(i)
            for i, e in ENTRIES.items()
            if all(w in e["title"] for w in words) and (not sites or set(sites) & set(e["sites"]))
        ]
        facets = {"site": {"alpha": 2, "beta": 2}} if query.get("facets") else {}
        sources = [{"name": "demo", "ok": True, "latency_ms": 3.0, "message": ""}]
        return 200, {"entries": found, "total": len(found), "facets": facets, "sources": sources}
    if method == "GET" and path.startswith("entries/"):
        wanted = unquote(path.removeprefix("entries/"))
        if wanted not in ENTRIES:
            return 404, {"message": "no such entry"}
        return 200, entry(wanted, query.get("site", [""])[0])
    if method == "POST" and path.endswith("/make-available"):
        wanted = unquote(path.removeprefix("entries/").removesuffix("/make-available"))
        if body.get("site") == "gamma":
            return 403, {"message": "you may not use site gamma"}
        return 202, {"id": "q-1", "state": "requested", "site": body["site"], "message": wanted}
    if (method, path) == ("GET", "requests/q-1"):
        fake.polls += 1
        state = "requested" if fake.polls < 2 else "replicating"
        return 200, {"id": "q-1", "state": state, "site": "alpha", "message": ""}
    if (method, path) == ("GET", "sources"):
        return 200, {"sources": [{"name": "demo", "kind": "builtin", "ok": True}]}
    if (method, path) == ("GET", "/services/workflows/api/v1/options"):
        if fake.broken:
            return 404, {"message": "no route"}
        return 200, {"sites": [{"name": "alpha", "label": "Alpha HPC", "partitions": []}]}
    if (method, path) == ("POST", "sources/tap/query"):
        return 200, {"columns": ["ra"], "rows": [[1.5]], "truncated": False, "message": ""}
    return 404, {"message": "no route"}


@pytest.fixture(scope="module")
def service() -> Iterator[StandIn]:
    """The stand-in ``catalogue`` service on a free port (see the module's docstring)."""
    port = free_port()
    fake = StandIn(url=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def handle_one(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            query = parse_qs(parts.query)
            if self.headers.get("Authorization") != f"token {fake.token}":
                status, reply = 403, {"message": "no such token"}
            else:
                path = parts.path.removeprefix(PREFIX)
                fake.seen.append((self.command, path, query, body))
                status, reply = respond(fake, self.command, path, query, body)
            send_json(self, status, reply)

        do_GET = do_POST = handle_one

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler, port):
        yield fake


@pytest.fixture(scope="module")
def server(service: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A Jupyter server for alice whose hub (and so whose catalogue service) is the stand-in."""
    with server_of_hub(tmp_path_factory.mktemp("lab-catalogue"), service.url, service.token) as lab:
        yield lab


def test_a_search_reaches_the_service_with_its_filters_and_bounds(
    server: LabServer, service: StandIn
) -> None:
    answer = call(server, "GET", "catalogue/search?q=radio&site=beta&site=alpha&facets=1&limit=20")
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [e["id"] for e in data["entries"]] == [
        "demo:beta/radio/obs-0001.fits",
        "demo:both/radio/cube.zarr",
    ]
    assert data["facets"]["site"] == {"alpha": 2, "beta": 2}
    assert data["sources"][0]["ok"] is True
    method, path, query, _ = service.seen[-1]
    assert (method, path) == ("GET", "search")
    assert query == {
        "q": ["radio"],
        "site": ["beta", "alpha"],
        "offset": ["0"],
        "limit": ["20"],
        "facets": ["1"],
    }
    # no limit given: a page of 50
    call(server, "GET", "catalogue/search?q=hep")
    assert service.seen[-1][2]["limit"] == ["50"]


@pytest.mark.parametrize(
    "query,said",
    [
        ("q=" + "x" * 10_000, "at most 512"),
        ("q=a&limit=1000000000", "limit must be between 1 and 200"),
        ("q=a&offset=99999999", "offset must be between 0 and 10000"),
        ("q=a&limit=ten", "limit must be a whole number"),
        ("q=a&" + "&".join(f"site=s{i}" for i in range(21)), "at most 20 site filters"),
        ("q=a&kind=" + "k" * 200, "is too long"),
    ],
    ids=["10kB", "huge-page", "deep-offset", "not-a-number", "many-filters", "long-filter"],
)
def test_bad_searches_are_refused_before_the_service(
    server: LabServer, service: StandIn, query: str, said: str
) -> None:
    before = len(service.seen)
    answer = call(server, "GET", f"catalogue/search?{query}")
    assert answer.status_code == 400, answer.text
    assert said in answer.json()["message"]
    assert len(service.seen) == before


def test_an_entry_is_asked_by_its_quoted_id_with_the_chosen_site(
    server: LabServer, service: StandIn
) -> None:
    answer = call(server, "GET", "catalogue/entry?id=demo:both/radio/cube.zarr&site=beta")
    assert answer.status_code == 200, answer.text
    assert answer.json()["access"]["code"] == "open('/data/beta/both/radio/cube.zarr')"
    # the whole id is one path segment of the service's URL: its slashes are quoted
    assert service.seen[-1][:3] == (
        "GET",
        "entries/demo%3Aboth%2Fradio%2Fcube.zarr",
        {"site": ["beta"]},
    )
    missing = call(server, "GET", "catalogue/entry?id=demo:nothing")
    assert (missing.status_code, missing.json()["message"]) == (404, "no such entry")
    before = len(service.seen)
    for bad in ("../../admin", "demo", "Demo:x", "x" * 40 + ":y", ""):
        refused = call(server, "GET", f"catalogue/entry?id={bad}")
        assert refused.status_code == 400, (bad, refused.text)
    assert call(server, "GET", "catalogue/entry?id=demo:x&site=../beta").status_code == 400
    assert len(service.seen) == before


def test_make_available_is_forwarded_and_its_state_followed(
    server: LabServer, service: StandIn
) -> None:
    asked = call(
        server,
        "POST",
        "catalogue/make-available",
        {"id": "demo:alpha/hep/run-7.root", "site": "beta"},
    )
    assert asked.status_code == 202, asked.text
    assert asked.json()["state"] == "requested"
    method, path, _, body = service.seen[-1]
    assert (method, path, body) == (
        "POST",
        "entries/demo%3Aalpha%2Fhep%2Frun-7.root/make-available",
        {"site": "beta"},
    )
    states = [call(server, "GET", "catalogue/request?id=q-1").json()["state"] for _ in range(3)]
    assert states == ["requested", "replicating", "replicating"]  # never done by itself
    refused = call(
        server,
        "POST",
        "catalogue/make-available",
        {"id": "demo:alpha/hep/run-7.root", "site": "gamma"},
    )
    assert (refused.status_code, refused.json()["message"]) == (403, "you may not use site gamma")
    before = len(service.seen)
    assert call(server, "POST", "catalogue/make-available", {"id": "demo:x"}).status_code == 400
    assert call(server, "POST", "catalogue/make-available", ["demo:x"]).status_code == 400
    assert call(server, "GET", "catalogue/request?id=../sources").status_code == 400
    assert len(service.seen) == before


def test_sources_and_source_queries_pass_through(server: LabServer, service: StandIn) -> None:
    assert call(server, "GET", "catalogue/sources").json()["sources"][0]["name"] == "demo"
    adql = {"adql": "SELECT TOP 5 ra FROM ivoa.obscore"}
    answer = call(server, "POST", "catalogue/query", {"source": "tap", "query": adql})
    assert answer.json()["rows"] == [[1.5]]
    assert service.seen[-1][1:] == ("sources/tap/query", {}, adql)
    too_big = {"source": "tap", "query": {"adql": "x" * 70_000}}
    assert call(server, "POST", "catalogue/query", too_big).status_code == 413


def test_a_failing_service_is_a_502_without_its_insides(
    server: LabServer, service: StandIn
) -> None:
    with broken(service):
        answer = call(server, "GET", "catalogue/search?q=radio")
    assert answer.status_code == 502
    assert answer.json()["message"].startswith("The catalogue service failed")


def test_the_usable_sites_come_from_the_batch_run_options(
    server: LabServer, service: StandIn
) -> None:
    answer = call(server, "GET", "catalogue/sites")
    assert answer.json() == {"sites": [{"name": "alpha", "label": "Alpha HPC"}], "known": True}
    # without the workflows service the panel shows each site's access as unknown
    with broken(service):
        answer = call(server, "GET", "catalogue/sites")
    assert answer.status_code == 200
    assert answer.json() == {"sites": [], "known": False, "message": "no route"}


async def test_an_absent_or_unreachable_service_is_said_clearly() -> None:
    url = f"http://127.0.0.1:{free_port()}/services/catalogue/"
    manager = CatalogueManager(
        environ={"CONTINUUM_CATALOGUE_URL": url, "JUPYTERHUB_API_TOKEN": "s3cr3t"}
    )
    with pytest.raises(CatalogueError) as caught:
        await manager.sources()
    assert (caught.value.status, "cannot be reached" in caught.value.message) == (502, True)
    assert manager.endpoint.api == url + "api/v1/"
    assert "s3cr3t" not in repr(manager.endpoint)
    with pytest.raises(CatalogueError) as unset:
        await CatalogueManager(environ={}).sources()
    assert unset.value.status == 503 and "CONTINUUM_CATALOGUE_URL" in unset.value.message
