"""The catalogue service's REST API: access, visibility, bad input, requests kept in its store.

The real application (:func:`continuum_hub.catalogue.app.make_application`: handlers, store,
sources loaded from their settings) is served on 127.0.0.1, with HubAuth and the hub's users
API at the boundary (tokens and groups from dicts) and the federation's ``StaticSource`` as
the sources.  The real hub in front is ``tests/integration/test_catalogue_service.py``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from traitlets.config import Config

from continuum_hub.catalogue import ACCESS_SCOPE, API_PREFIX
from continuum_hub.catalogue.app import make_application
from continuum_hub.workflows.credentials import HubUser
from fixtures.catalogue import ENTRIES, HEP, RADIO, STATIC
from fixtures.workflow_runs import DEMO

pytestmark = pytest.mark.catalogue

#: token → the hub's model of it
TOKENS = {
    "alice": {"kind": "user", "name": "alice", "scopes": [ACCESS_SCOPE]},
    "bob": {"kind": "user", "name": "bob", "scopes": [ACCESS_SCOPE]},
    "carol": {"kind": "user", "name": "carol", "scopes": ["access:services"]},
    "noscope": {"kind": "user", "name": "alice", "scopes": ["read:users:activity!user"]},
    "service": {"kind": "service", "name": "other", "scopes": [ACCESS_SCOPE]},
}
GROUPS = {"alice": {HEP, RADIO}, "bob": {HEP}, "carol": set()}
SOURCES = [
    {"name": "demo", "kind": STATIC, "entries": ENTRIES},
    {"name": "slow", "kind": STATIC, "hang_word": "hang", "delay": 30, "timeout": 0.5},
    {"name": "nothing", "kind": "no-such-kind"},
]


class FakeHubAuth:
    """HubAuth at the boundary: ``Authorization: token …`` → :data:`TOKENS`."""

    api_url = "http://127.0.0.1:1/hub/api"
    api_token = "service-secret"

    def get_token(self, handler: Any, in_cookie: bool = True) -> str | None:
        found = re.match(r"token\s+(.+)", handler.request.headers.get("Authorization", ""))
        return found.group(1) if found else None

    async def user_for_token(self, token: str, sync: bool = False) -> dict[str, Any] | None:
        return TOKENS.get(token)


class FakeHub:
    """The hub's users API: groups from :data:`GROUPS` (the service never asks the client)."""

    async def user(self, name: str) -> HubUser:
        return HubUser(name, False, frozenset(GROUPS.get(name, set())))


class Catalogue:
    def __init__(self, url: str) -> None:
        self.url = url

    async def call(
        self, method: str, path: str, who: str | None = "alice", body: Any = None
    ) -> tuple[int, Any]:
        """``method`` on ``api/v1/<path>`` with the token ``who`` (none: no header)."""
        headers = {"Authorization": f"token {who}"} if who else {}
        response = await AsyncHTTPClient().fetch(
            f"{self.url}{API_PREFIX}/{path}",
            method=method,
            headers=headers,
            body=json.dumps(body) if method == "POST" else None,
            raise_error=False,
        )
        return response.code, json.loads(response.body) if response.body else None

    async def search(self, who: str = "alice", **params: Any) -> tuple[int, Any]:
        return await self.call("GET", "search?" + urlencode(params, doseq=True), who)


async def serve(state: Path) -> tuple[HTTPServer, Catalogue]:
    config = Config(
        {"CatalogueApp": {"state_dir": str(state), "registry_path": str(DEMO), "sources": SOURCES}}
    )
    app = make_application(config, hub_auth=FakeHubAuth(), hub=FakeHub())
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    return server, Catalogue(f"http://127.0.0.1:{port}")


@pytest.fixture
async def catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Catalogue]:
    monkeypatch.setenv("CONTINUUM_SLURM_CONF_ALPHA", "/a")
    monkeypatch.setenv("CONTINUUM_SLURM_CONF_BETA", "/b")
    server, client = await serve(tmp_path / "catalogue")
    yield client
    server.stop()


async def test_tokens_without_the_scope_are_refused(catalogue: Catalogue) -> None:
    assert (await catalogue.call("GET", "search", who=None))[0] == 401
    assert (await catalogue.call("GET", "search", who="forged"))[0] == 401
    code, body = await catalogue.call("GET", "search", who="noscope")
    assert code == 403 and ACCESS_SCOPE in body["message"]
    assert (await catalogue.call("GET", "search", who="service"))[0] == 403
    assert (await catalogue.call("GET", "search", who="carol"))[0] == 200


async def test_private_entries_only_for_their_vo_by_search_and_by_id(
    catalogue: Catalogue,
) -> None:
    code, alice = await catalogue.search(q="radio", source="demo")
    assert code == 200
    assert [e["id"] for e in alice["entries"]] == [
        "demo:radio/private-survey",
        "demo:radio/public-sky",
    ]
    _, bob = await catalogue.search("bob", q="radio", source="demo", facets=1)
    assert [e["id"] for e in bob["entries"]] == ["demo:radio/public-sky"]
    assert bob["total"] == 1 and bob["facets"]["format"] == {"fits": 1}
    entry = quote("demo:radio/private-survey", safe="")
    code, found = await catalogue.call("GET", f"entries/{entry}")
    assert code == 200 and found["replicas"][0]["site"] == "beta"
    # hidden and missing answer alike: no oracle
    hidden = await catalogue.call("GET", f"entries/{entry}", who="bob")
    missing = await catalogue.call("GET", f"entries/{quote('demo:radio/none', safe='')}")
    assert hidden == missing == (404, {"message": "no such entry"})


async def test_a_hanging_source_is_cut_off_and_a_broken_one_reported(
    catalogue: Catalogue,
) -> None:
    started = time.monotonic()
    code, answer = await catalogue.search(q="hang radio")
    assert code == 200 and time.monotonic() - started < 3
    by_name = {s["name"]: s for s in answer["sources"]}
    assert by_name["slow"] == {**by_name["slow"], "ok": False, "message": "timed out after 0.5 s"}
    assert by_name["nothing"]["message"].startswith("unavailable: not loaded: unknown source kind")
    assert by_name["demo"]["ok"] is True
    code, listed = await catalogue.call("GET", "sources")
    assert code == 200
    assert [(s["name"], s["ok"]) for s in listed["sources"]] == [
        ("demo", True),
        ("slow", True),
        ("nothing", False),
    ]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("search?q=" + "x" * 10_000, 400, "the query string is too long"),
        ("search?q=" + "x" * 600, 400, "the search text is too long"),
        ("search?q=a%00b", 400, "control characters"),
        ("search?q=%ff", 400, "not UTF-8"),
        ("search?limit=1000000000", 400, "limit must be between 1 and 200"),
        ("search?offset=99999999999999999999", 400, "offset must be between 0 and 10000"),
        ("search?limit=ten", 400, "limit must be a whole number"),
        ("search?source=nowhere", 400, "unknown source 'nowhere'"),
        ("search?kind=planet", 400, "unknown kind 'planet'"),
        ("search?time_from=yesterday", 400, "ISO 8601"),
        ("search?sort=size", 400, "unknown parameter 'sort'"),
        ("search?q=%22%20OR%201%3D1%20--%20title%3A*", 200, None),
        ("entries/no-colon", 400, "not a catalogue entry id"),
        ("entries/Demo%3Ax", 400, "not a catalogue entry id"),
        ("entries/demo%3A..%2F..%2Fetc%2Fpasswd", 400, "must not contain '..'"),
        ("entries/demo%3A%2Fetc%2Fpasswd", 400, "leading /"),
        ("entries/demo%3Aa%5C..%5Cb", 400, "backslashes"),
        ("entries/demo%3Aa%01b", 400, "control characters"),
        ("entries/elsewhere%3Ax", 404, "no such entry"),
        ("nothing/here", 404, "no such route"),
        ("requests/q-00", 404, "no such request"),
    ],
)
async def test_bad_input_gets_a_clear_4xx(
    catalogue: Catalogue, path: str, status: int, message: str | None
) -> None:
    code, body = await catalogue.call("GET", path)
    assert code == status, body
    if message is not None:
        assert message in body["message"] and "Traceback" not in body["message"]


async def test_make_available_at_allowed_sites_and_requests_survive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTINUUM_SLURM_CONF_ALPHA", "/a")
    monkeypatch.setenv("CONTINUUM_SLURM_CONF_BETA", "/b")
    state = tmp_path / "catalogue"
    server, catalogue = await serve(state)
    entry = quote("demo:hep/run-2024", safe="")
    # bob (HEP only) may not use beta; an unknown site and a bad body are refused
    code, body = await catalogue.call("POST", f"entries/{entry}/make-available", "bob", {})
    assert code == 400 and "site" in body["message"]
    code, body = await catalogue.call(
        "POST", f"entries/{entry}/make-available", "bob", {"site": "beta"}
    )
    assert (code, body) == (403, {"message": "you may not use site beta"})
    code, body = await catalogue.call(
        "POST", f"entries/{entry}/make-available", "bob", {"site": "gamma"}
    )
    assert code == 400 and "unknown site" in body["message"]
    hidden = quote("demo:radio/private-survey", safe="")
    code, _ = await catalogue.call(
        "POST", f"entries/{hidden}/make-available", "bob", {"site": "alpha"}
    )
    assert code == 404
    code, made = await catalogue.call(
        "POST", f"entries/{entry}/make-available", "alice", {"site": "beta"}
    )
    assert code == 201 and made["state"] == "requested" and made["owner"] == "alice"
    assert (state / "catalogue.sqlite").stat().st_mode & 0o777 == 0o600
    server.stop()
    # a new process on the same state: the request is there, its state refreshed
    server, catalogue = await serve(state)
    code, listed = await catalogue.call("GET", "requests")
    assert code == 200 and [r["id"] for r in listed["requests"]] == [made["id"]]
    assert listed["requests"][0]["state"] == "replicating"
    code, one = await catalogue.call("GET", f"requests/{made['id']}")
    assert code == 200 and one["entry_id"] == "demo:hep/run-2024" and one["site"] == "beta"
    assert (await catalogue.call("GET", f"requests/{made['id']}", "bob"))[0] == 404
    assert (await catalogue.call("GET", "requests", "bob"))[1] == {"requests": []}
    server.stop()


async def test_openapi_document_lists_every_route(catalogue: Catalogue) -> None:
    code, document = await catalogue.call("GET", "openapi.json")
    assert code == 200 and document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/",
        "/openapi.json",
        "/search",
        "/sources",
        "/entries/{entry_id}/make-available",
        "/entries/{entry_id}",
        "/requests",
        "/requests/{request_id}",
        "/sources/{source_name}/query",
    }
    names = [p["name"] for p in document["paths"]["/search"]["get"]["parameters"]]
    assert names[:3] == ["q", "source", "kind"] and "facets" in names


async def test_a_sources_own_query_is_bounded_and_sees_only_what_its_user_may(
    catalogue: Catalogue,
) -> None:
    """``POST sources/{name}/query``: the source's answer (visibility applied), bad bodies
    refused with a message, a source that hangs cut at its timeout plus the margin."""
    code, body = await catalogue.call(
        "POST", "sources/demo/query", "alice", {"title_contains": "radio"}
    )
    assert code == 200 and body["columns"] == ["id", "title"]
    assert sorted(row[1] for row in body["rows"]) == [
        "Radio sky, public release",
        "Radio survey, private calibration",
    ]
    code, body = await catalogue.call(
        "POST", "sources/demo/query", "bob", {"title_contains": "radio"}
    )
    assert code == 200 and [row[1] for row in body["rows"]] == ["Radio sky, public release"]
    code, body = await catalogue.call("POST", "sources/demo/query", "alice", {})
    assert code == 400 and "title_contains" in body["message"]
    code, body = await catalogue.call("POST", "sources/demo/query", "alice", ["adql"])
    assert code == 400 and "JSON object" in body["message"]
    code, body = await catalogue.call(
        "POST", "sources/demo/query", "alice", {"title_contains": "x" * 20000}
    )
    assert code == 400 and "too large" in body["message"]
    assert (await catalogue.call("POST", "sources/absent/query", "alice", {"a": 1}))[0] == 404
    assert (await catalogue.call("POST", "sources/demo/query", None, {"a": 1}))[0] == 401
    started = time.monotonic()
    code, body = await catalogue.call(
        "POST", "sources/slow/query", "alice", {"title_contains": "hang"}
    )
    assert code == 504 and "did not answer within" in body["message"]
    assert time.monotonic() - started < 10
