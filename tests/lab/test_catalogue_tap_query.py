"""The *Catalogue* panel's TAP query through the real stack: a real Jupyter server's
``continuum/catalogue/query`` route → the catalogue service's application → its TAP source →
GAVO DaCHS (``tap_server``, the session's, shared with ``test_catalogue_tap.py``).

The service is the real application (:func:`continuum_hub.catalogue.app.make_application`:
handlers, store, sources loaded from their settings and started) served from a thread on
127.0.0.1, where the Jupyter server finds it as in a hub (below the hub's base derived from
``JUPYTERHUB_API_URL``, with the server's ``JUPYTERHUB_API_TOKEN``).  Only the hub's token check
and users API are stand-ins: alice (radio and HEP) is the server's owner; bob (HEP only) asks
the service directly.  The real hub in front is ``tests/integration/test_catalogue_service.py``;
the source against DaCHS alone, ``tests/integration/test_catalogue_tap.py``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import pyvo
import requests
from lab_support import LabServer, call, server_of_hub
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from traitlets.config import Config

from continuum_federation.dachs import DEMO_TABLE, DachsServer
from continuum_hub.catalogue import ACCESS_SCOPE, API_PREFIX
from continuum_hub.catalogue.app import make_application, start_sources, stop_sources
from continuum_hub.catalogue.sources.tapclient import pyvo_code
from continuum_hub.workflows.credentials import HubUser
from fixtures.catalogue import HEP, RADIO
from fixtures.workflow_runs import DEMO

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.catalogue]

assert DEMO_TABLE == "radio.observations"  # the queries below name it

#: the most rows the source returns (its ``maxrec``)
MOST_ROWS = 200
#: a cone around one of the demo table's targets (its pointings scatter within 0.5°)
CONE = {"ra": 350.86, "dec": 58.81, "radius_deg": 0.4}
GROUPS = {"alice": {HEP, RADIO}, "bob": {HEP}}


class HubAuth:
    """The hub's token check at the boundary: ``tokens`` → user names, with the scope."""

    api_url = "http://127.0.0.1:1/hub/api"
    api_token = "service-secret"

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens

    def get_token(self, handler: Any, in_cookie: bool = True) -> str | None:
        found = re.match(r"token\s+(.+)", handler.request.headers.get("Authorization", ""))
        return found.group(1) if found else None

    async def user_for_token(self, token: str, sync: bool = False) -> dict[str, Any] | None:
        name = self.tokens.get(token)
        return {"kind": "user", "name": name, "scopes": [ACCESS_SCOPE]} if name else None


class Hub:
    """The hub's users API: groups from :data:`GROUPS`."""

    async def user(self, name: str) -> HubUser:
        return HubUser(name, False, frozenset(GROUPS.get(name, set())))


@contextmanager
def catalogue_service(config: Config, tokens: dict[str, str]) -> Iterator[str]:
    """The real catalogue application with started sources, served from a thread (its own
    event loop, so that blocking test code can call it through the Jupyter server); its URL."""
    loop = asyncio.new_event_loop()
    sock, port = bind_unused_port()
    started = threading.Event()
    made: dict[str, Any] = {}

    async def start() -> None:
        app = make_application(config, hub_auth=HubAuth(tokens), hub=Hub())
        made["sources"] = app.settings["catalogue_sources"]
        await start_sources(made["sources"])
        made["server"] = HTTPServer(app)
        made["server"].add_sockets([sock])

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        finally:
            started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="catalogue-service", daemon=True)
    thread.start()
    assert started.wait(60) and "server" in made, "the catalogue service did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        made["server"].stop()
        asyncio.run_coroutine_threadsafe(stop_sources(made["sources"]), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


@pytest.fixture(scope="module")
def stack(
    tap_server: DachsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LabServer, str]]:
    """alice's Jupyter server in front of the catalogue service with the TAP source; the
    service's URL (for bob's direct calls)."""
    lab_token = secrets.token_hex(16)
    state = tmp_path_factory.mktemp("catalogue-tap")
    source = {
        "name": "radio-tap",
        "kind": "tap",
        "label": "Radio archive (TAP)",
        "url": tap_server.tap_url,
        "vo": RADIO,
        "visibility": "vo",
        "maxrec": MOST_ROWS,
    }
    config = Config(
        {
            "CatalogueApp": {
                "state_dir": str(state / "service"),
                "registry_path": str(DEMO),
                "sources": [source],
            }
        }
    )
    with pytest.MonkeyPatch.context() as patch:
        # the demo site registry names its sites' Slurm configurations by these
        patch.setenv("CONTINUUM_SLURM_CONF_ALPHA", "/a")
        patch.setenv("CONTINUUM_SLURM_CONF_BETA", "/b")
        with (
            catalogue_service(config, {lab_token: "alice", "bob-token": "bob"}) as url,
            server_of_hub(state / "lab", url, lab_token) as lab,
        ):
            yield lab, url


def query(lab: LabServer, body: dict[str, Any]) -> requests.Response:
    return call(lab, "POST", "catalogue/query", {"source": "radio-tap", "query": body})


def obs_ids(tap_server: DachsServer, adql: str, maxrec: int = 10_000) -> list[str]:
    """Observation ids for ``adql``, asked of the server directly through pyvo."""
    table = pyvo.dal.TAPService(tap_server.tap_url).run_sync(adql, maxrec=maxrec).to_table()
    return sorted(str(value) for value in table["obs_id"])


def test_the_form_answers_what_the_server_answers_and_its_cell_runs(
    stack: tuple[LabServer, str], tap_server: DachsServer
) -> None:
    lab, _ = stack
    # what the panel's form is built from: the table's searchable columns and the rows' bound
    entry = call(lab, "GET", f"catalogue/entry?id=radio-tap:{DEMO_TABLE}")
    assert entry.status_code == 200, entry.text
    metadata = entry.json()["metadata"]
    assert metadata["maxrec"] == MOST_ROWS and metadata["service"] == tap_server.tap_url
    assert {"ra", "dec", "band_min", "band_max"} <= set(metadata["form_fields"])
    answer = query(lab, {"table": DEMO_TABLE, **CONE, "band_max": 1000, "maxrec": 100})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    names = [column["name"] for column in data["columns"]]
    assert names[:4] == ["obs_id", "target", "ra", "dec"]
    assert next(c for c in data["columns"] if c["name"] == "ra")["unit"] == "deg"
    expected = obs_ids(
        tap_server,
        "SELECT obs_id FROM radio.observations WHERE "
        "1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 350.86, 58.81, 0.4)) "
        "AND freq_min <= 1000",
    )
    assert 0 < len(expected) < 100
    assert sorted(row[names.index("obs_id")] for row in data["rows"]) == expected
    assert data["truncated"] is False and data["message"] == f"{len(expected)} rows"
    # *Insert code*: the panel's cell runs the ADQL the service returned, with the rows asked
    namespace: dict[str, Any] = {}
    exec(pyvo_code(tap_server.tap_url, data["adql"], 100), namespace)  # noqa: S102 (ours)
    assert sorted(str(v) for v in namespace["table"]["obs_id"]) == expected


def test_raw_adql_is_bounded_and_said_to_be_cut(stack: tuple[LabServer, str]) -> None:
    lab, _ = stack
    answer = query(lab, {"adql": "SELECT obs_id, ra FROM radio.observations", "maxrec": 50})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [c["name"] for c in data["columns"]] == ["obs_id", "ra"]
    assert len(data["rows"]) == 50 and data["truncated"] is True
    assert data["message"] == "50 rows (cut at 50: narrow the query)"


@pytest.mark.parametrize(
    "body,status,message",
    [
        ({"adql": "DELETE FROM radio.observations"}, 400, "only a SELECT query is allowed"),
        (
            {"adql": "SELECT * FROM radio.observations; DROP TABLE x"},
            400,
            "only one statement is allowed (remove the ';' and what follows it)",
        ),
        ({"table": DEMO_TABLE, "ra": 400, "dec": 0, "radius_deg": 1}, 400,
         "ra must be between 0 and 360, not 400"),
        ({"table": DEMO_TABLE, "ra": 10, "dec": 20}, 400,
         "a cone needs ra, dec and radius_deg (degrees)"),
        ({"table": DEMO_TABLE, "time_from": "31/01/2024"}, 400,
         "time_from must be an ISO 8601 date or time, not '31/01/2024'"),
        ({"table": DEMO_TABLE, "maxrec": 10_000}, 400,
         f"maxrec must be a whole number between 1 and {MOST_ROWS}"),
        ({"table": "radio.nothing"}, 400, "Radio archive (TAP) has no table 'radio.nothing'"),
    ],
    ids=["delete", "two-statements", "ra-range", "half-cone", "time", "maxrec", "no-table"],
)  # fmt: skip
def test_refusals_reach_the_panel_in_the_services_words(
    stack: tuple[LabServer, str], body: dict[str, Any], status: int, message: str
) -> None:
    lab, _ = stack
    answer = query(lab, body)
    assert (answer.status_code, answer.json()["message"]) == (status, message)


def test_another_vo_cannot_query_the_private_source(stack: tuple[LabServer, str]) -> None:
    _, url = stack
    answer = requests.post(
        f"{url}{API_PREFIX}/sources/radio-tap/query",
        json={"adql": "SELECT TOP 1 * FROM radio.observations"},
        headers={"Authorization": "token bob-token"},
        timeout=30,
    )
    assert answer.status_code == 404, answer.text
    assert "obs_id" not in answer.text
