"""The TAP catalogue source against a real TAP server: GAVO DaCHS with the demo table.

The server (``tap_server``) publishes ``radio.observations`` (300 generated observations of ten
radio sources) and a small RegTAP registry listing itself; the source is private to
``vo.radio.example`` (alice, dave).  What the form answers is compared with the same question
asked directly through pyvo.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import pyvo

from continuum_federation.dachs import DEMO_IVOID, DEMO_TABLE, DachsServer, demo_rows
from continuum_federation.process import free_port
from continuum_hub.catalogue.model import QueryError, make_query
from continuum_hub.catalogue.sources.base import ActionRefused, SourceUnavailable

pytestmark = [pytest.mark.integration, pytest.mark.catalogue]

RADIO = ["vo.radio.example"]
assert DEMO_TABLE == "radio.observations"  # the queries below name it
HEP = ["vo.hep.example"]


def direct(server: DachsServer, adql: str) -> list[str]:
    """Observation ids for ``adql``, asked of the server directly."""
    table = pyvo.dal.TAPService(server.tap_url).run_sync(adql, maxrec=10_000).to_table()
    return sorted(str(value) for value in table["obs_id"])


async def test_search_finds_the_demo_table_for_its_vo_only(tap_source: Callable[..., Any]) -> None:
    source = await tap_source()
    page = await source.search(make_query("radio observations", groups=RADIO, with_facets=True))
    ids = [entry.id for entry in page.entries]
    assert "radio-tap:radio.observations" in ids
    table = next(entry for entry in page.entries if entry.identifier == DEMO_TABLE)
    assert table.kind == "table" and table.vo == "vo.radio.example"
    assert "frequency" in table.description and "obs_id" in table.metadata["columns"]
    assert page.facets["kind"]["table"] >= 1 and page.facets["source"] == {"radio-tap": page.total}
    # words from column descriptions find it too; a word nowhere finds nothing
    by_column = await source.search(make_query("declination", groups=RADIO))
    assert [entry.identifier for entry in by_column.entries] == [DEMO_TABLE]
    assert (await source.search(make_query("zzzunheard", groups=RADIO))).total == 0
    # the service itself is an entry of kind "service"
    services = await source.search(make_query("", kinds=["service"], groups=RADIO))
    assert [entry.identifier for entry in services.entries] == ["@service"]
    # another VO sees nothing, not even by id, and may not query
    assert (await source.search(make_query("radio", groups=HEP))).total == 0
    assert await source.get(DEMO_TABLE, make_query(groups=HEP)) is None
    with pytest.raises(ActionRefused, match="private"):
        await source.run_query({"adql": "SELECT TOP 1 * FROM radio.observations"}, make_query())


async def test_get_lists_columns_and_its_code_runs(
    tap_source: Callable[..., Any], tap_server: DachsServer
) -> None:
    source = await tap_source(maxrec=500)
    entry = await source.get(DEMO_TABLE.upper(), make_query(groups=RADIO))
    assert entry is not None and entry.id == "radio-tap:radio.observations"
    columns = {column["name"]: column for column in entry.metadata["columns"]}
    assert list(columns)[:4] == ["obs_id", "target", "ra", "dec"]
    assert columns["ra"]["unit"] == "deg" and columns["ra"]["ucd"] == "pos.eq.ra;meta.main"
    assert (
        columns["freq_min"]["unit"] == "MHz" and "frequency" in columns["freq_min"]["description"]
    )
    assert set(entry.metadata["form_fields"]) == {
        "ra", "dec", "time_min", "time_max", "band_min", "band_max",
    }  # fmt: skip
    assert entry.metadata["example_query"] == "SELECT TOP 100 * FROM radio.observations"
    # *Insert code*: the cell runs as it is
    namespace: dict[str, Any] = {}
    exec(entry.access["code"], namespace)  # noqa: S102 (our own generated cell)
    assert len(namespace["table"]) == 100
    assert tap_server.tap_url in entry.access["code"]
    assert await source.get("radio.nothing", make_query(groups=RADIO)) is None


async def test_the_form_returns_the_same_rows_as_a_direct_query(
    tap_source: Callable[..., Any], tap_server: DachsServer
) -> None:
    source = await tap_source()
    form = {
        "table": DEMO_TABLE,
        "ra": 350.86, "dec": 58.81, "radius_deg": 0.4,
        "time_from": "2023-03-01", "time_to": "2024-06-30T12:00:00Z",
        "band_min": 100, "band_max": 1000,
    }  # fmt: skip
    answer = await source.run_query(form, make_query(groups=RADIO))
    names = [column["name"] for column in answer["columns"]]
    found = sorted(row[names.index("obs_id")] for row in answer["rows"])
    # MJD 60004 = 2023-03-01, 60491.5 = 2024-06-30 12:00; 100-1000 MHz overlaps HBA and L
    expected = direct(
        tap_server,
        "SELECT obs_id FROM radio.observations WHERE "
        "1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 350.86, 58.81, 0.4)) "
        "AND t_min <= 60491.5 AND t_max >= 60004 AND freq_min <= 1000 AND freq_max >= 100",
    )
    assert found == expected and len(found) >= 3 and answer["truncated"] is False
    bands = {row[names.index("band")] for row in answer["rows"]}
    assert bands <= {"HBA", "L"}
    assert {row[names.index("target")] for row in answer["rows"]} == {"Cas A"}
    # chosen columns only; the band alone
    narrow = await source.run_query(
        {"table": DEMO_TABLE, "band_min": 30, "band_max": 80, "columns": ["obs_id", "band"]},
        make_query(groups=RADIO),
    )
    assert [column["name"] for column in narrow["columns"]] == ["obs_id", "band"]
    lba = sorted(str(row["obs_id"]) for row in demo_rows() if row["band"] == "LBA")
    assert sorted(row[0] for row in narrow["rows"]) == lba


async def test_raw_adql_runs(tap_source: Callable[..., Any]) -> None:
    source = await tap_source()
    answer = await source.run_query(
        {
            "adql": "SELECT target, COUNT(*) AS n FROM radio.observations "
            "GROUP BY target ORDER BY target;"
        },
        make_query(groups=RADIO),
    )
    assert [column["name"] for column in answer["columns"]] == ["target", "n"]
    assert len(answer["rows"]) == 10 and all(row[1] == 30 for row in answer["rows"])
    assert answer["truncated"] is False
    # a literal may hold what the guard refuses elsewhere
    quoted = await source.run_query(
        {"adql": "SELECT obs_id FROM radio.observations WHERE target = 'x; DROP TABLE y'"},
        make_query(groups=RADIO),
    )
    assert quoted["rows"] == []
    # the server's own refusal is a clear error
    with pytest.raises(QueryError, match="refused the query"):
        await source.run_query({"adql": "SELECT x FROM radio.nothing"}, make_query(groups=RADIO))


async def test_a_query_over_everything_is_bounded(tap_source: Callable[..., Any]) -> None:
    source = await tap_source(maxrec=50)
    answer = await source.run_query(
        {"adql": "SELECT * FROM radio.observations"}, make_query(groups=RADIO)
    )
    assert len(answer["rows"]) == 50 and answer["truncated"] is True
    assert "cut at 50" in answer["message"]
    form = await source.run_query({"table": DEMO_TABLE, "maxrec": 7}, make_query(groups=RADIO))
    assert len(form["rows"]) == 7 and form["truncated"] is True
    exact = await source.run_query(
        {"adql": "SELECT TOP 50 obs_id FROM radio.observations"}, make_query(groups=RADIO)
    )
    assert len(exact["rows"]) == 50 and exact["truncated"] is False
    with pytest.raises(QueryError, match="maxrec must be"):
        await source.run_query({"table": DEMO_TABLE, "maxrec": 10**9}, make_query(groups=RADIO))


async def test_a_slow_query_times_out_cleanly(tap_source: Callable[..., Any]) -> None:
    source = await tap_source(query_timeout=1.0)
    # 27 million row combinations: seconds of work for the server
    slow = (
        "SELECT COUNT(*) AS n FROM radio.observations AS a, radio.observations AS b, "
        "radio.observations AS c WHERE a.ra > b.dec + c.ra"
    )
    started = time.monotonic()
    with pytest.raises(QueryError, match=r"did not finish within 1 s"):
        await source.run_query({"adql": slow}, make_query(groups=RADIO))
    assert time.monotonic() - started < 3
    assert (await source.health()).ok  # and the source still answers


async def test_tables_read_before_stay_when_the_service_stops_answering(
    tap_source: Callable[..., Any],
) -> None:
    source = await tap_source(metadata_ttl=0)
    source.url = f"http://127.0.0.1:{free_port()}/tap"  # the service is gone from here on
    page = await source.search(make_query("observations", groups=RADIO))
    assert [entry.identifier for entry in page.entries] == [DEMO_TABLE]
    assert not (await source.health()).ok
    with pytest.raises(SourceUnavailable):
        await source.run_query({"table": DEMO_TABLE}, make_query(groups=RADIO))


async def test_the_registry_lists_tap_services(
    tap_source: Callable[..., Any], tap_server: DachsServer
) -> None:
    source = await tap_source(registry_url=tap_server.registry_url)
    page = await source.search(make_query("radio", kinds=["service"], groups=RADIO))
    listed = {entry.identifier: entry for entry in page.entries}
    assert DEMO_IVOID in listed and "@service" in listed
    service = listed[DEMO_IVOID]
    assert (
        service.id == f"radio-tap:{DEMO_IVOID}"
        and service.metadata["service"] == tap_server.tap_url
    )
    assert service.title == "Continuum demo radio archive" and service.vo == "vo.radio.example"
    assert tap_server.tap_url in service.access["code"]
    # words the registry's record lacks find no service there
    none = await source.search(make_query("zzzunheard", kinds=["service"], groups=RADIO))
    assert none.total == 0
    again = await source.get(DEMO_IVOID, make_query(groups=RADIO))
    assert again is not None and again.metadata["service"] == tap_server.tap_url
    assert await source.get("ivo://continuum.example/nothing", make_query(groups=RADIO)) is None
    # a registry that does not answer leaves the tables searchable
    gone = await tap_source(registry_url=f"http://127.0.0.1:{free_port()}/tap")
    tables = await gone.search(make_query("observations", groups=RADIO))
    assert [entry.identifier for entry in tables.entries] == [DEMO_TABLE]
