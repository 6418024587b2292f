"""The TAP source's ADQL: the raw query's guard and the cone/time/band form.

The guard's refusals are checked on a source whose service does not exist: a refusal must come
before anything is sent (a query that got through would fail as *unavailable* instead).  The
real server's answers are in ``tests/integration/test_catalogue_tap.py``.
"""

from __future__ import annotations

import pytest

from continuum_federation.process import free_port
from continuum_hub.catalogue.model import QueryError, make_query
from continuum_hub.catalogue.sources.adql import (
    ColumnInfo,
    TableInfo,
    check_adql,
    form_adql,
    plain_identifier,
)
from continuum_hub.catalogue.sources.base import ActionRefused, SourceUnavailable
from continuum_hub.catalogue.sources.tap import TapSource, pyvo_code

pytestmark = pytest.mark.catalogue

FORBIDDEN = [
    ("DROP TABLE radio.observations", "only a SELECT"),
    ("INSERT INTO radio.observations VALUES (1)", "only a SELECT"),
    ("SELECT 1; DROP TABLE radio.observations", "only one statement"),
    ("SELECT * FROM t;\nDELETE FROM t", "only one statement"),
    ("SELECT * INTO mine FROM radio.observations", "INTO is not allowed"),
    ("SELECT * FROM TAP_UPLOAD.mine", "TAP_UPLOAD"),
    ("SELECT * FROM t AS a JOIN tap_upload.x AS b ON a.id = b.id", "TAP_UPLOAD"),
    ("SELECT pg_sleep(60) FROM t", "pg_sleep is not allowed"),
    ("SELECT PG_READ_FILE('/etc/passwd') FROM t", "is not allowed"),
    ("SELECT dblink('host=x', 'select 1') FROM t", "dblink is not allowed"),
    ("WITH a AS (SELECT 1) SELECT * FROM a", "only a SELECT"),
    ("SELECT * FROM t WHERE x = 1 /* */; UPDATE t SET x = 2", "only one statement"),
    ("SELECT 'unterminated FROM t", None),  # the server's parser says why; not refused here
    ("SELECT " + "x, " * 3500 + "x FROM t", "too long"),
    ("", "non-empty"),
    ("SELECT\x00 1", "control characters"),
]


@pytest.mark.parametrize(("adql", "message"), FORBIDDEN)
def test_the_guard_refuses_what_is_not_one_read_only_select(adql: str, message: str | None) -> None:
    if message is None:
        assert check_adql(adql) == adql
        return
    with pytest.raises(QueryError, match=message):
        check_adql(adql)


def test_the_guard_passes_reads_and_looks_past_literals_and_comments() -> None:
    assert check_adql("  select top 5 * from radio.observations ;  ") == (
        "select top 5 * from radio.observations"
    )
    literal = "SELECT obs_id FROM t WHERE target = 'x; DROP TABLE t' AND band = 'it''s'"
    assert check_adql(literal) == literal
    assert check_adql('SELECT "select; drop" FROM t -- ; DELETE\n') == (
        'SELECT "select; drop" FROM t -- ; DELETE'
    )
    # a word that only contains a denied one is fine; a column named like a keyword is quoted
    assert check_adql("SELECT created, updated_at, dropout FROM t")
    with pytest.raises(QueryError, match="at most 100"):
        check_adql("SELECT " + "x" * 200, max_chars=100)


TABLE = TableInfo(
    "ivoa.obscore",
    columns=[
        ColumnInfo("obs_id", "char"),
        ColumnInfo("s_ra", "double", "deg", "pos.eq.ra"),
        ColumnInfo("s_dec", "double", "deg", "pos.eq.dec"),
        ColumnInfo("t_min", "double", "d", "time.start;obs.exposure"),
        ColumnInfo("t_max", "double", "d", "time.end;obs.exposure"),
        ColumnInfo("em_min", "double", "m", "em.wl;stat.min"),
        ColumnInfo("em_max", "double", "m", "em.wl;stat.max"),
        ColumnInfo("Odd Name", "char"),
    ],
)


def test_the_form_builds_adql_from_checked_values_only() -> None:
    adql = form_adql(
        TABLE,
        {
            "ra": "10.5",
            "dec": -20,
            "radius_deg": 0.25,
            "time_from": "2000-01-01T00:00:00Z",
            "time_to": "2000-01-02",
            "band_min": 150,
            "band_max": 300,
            "columns": ["OBS_ID", "Odd Name"],
        },
        11,
    )
    # MJD 51544 = 2000-01-01; 300 MHz = 0.999 m, 150 MHz = 1.999 m (the range turns round)
    assert adql == (
        'SELECT TOP 11 obs_id, "Odd Name" FROM ivoa.obscore WHERE '
        "1=CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 10.5, -20.0, 0.25)) "
        "AND t_min <= 51545.0 AND t_max >= 51544.0 "
        "AND em_min <= 1.99861638667 AND em_max >= 0.999308193333"
    )
    timestamps = TableInfo(
        "t", columns=[ColumnInfo("begin", "timestamp", ucd="time.start"),
                      ColumnInfo("end", "timestamp", ucd="time.end")]
    )  # fmt: skip
    assert form_adql(timestamps, {"time_from": "2024-05-01T10:00:00+02:00"}, 5) == (
        "SELECT TOP 5 * FROM t WHERE end >= '2024-05-01T08:00:00'"
    )


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"ra": 10, "dec": 20}, "needs ra, dec and radius_deg"),
        ({"ra": 400, "dec": 0, "radius_deg": 1}, "ra must be between 0 and 360"),
        ({"ra": "1; DROP", "dec": 0, "radius_deg": 1}, "ra must be a number"),
        ({"ra": 1, "dec": 0, "radius_deg": float("nan")}, "radius_deg must be between"),
        ({"ra": 1, "dec": 0, "radius_deg": True}, "radius_deg must be a number"),
        ({"time_from": "yesterday"}, "ISO 8601"),
        ({"columns": ["obs_id", "nope"]}, "has no column 'nope'"),
        ({"columns": "obs_id"}, "columns must be a list"),
    ],
)
def test_the_form_refuses_bad_values(request_: dict, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        form_adql(TABLE, request_, 10)
    with pytest.raises(QueryError, match="no spectral range"):
        form_adql(TableInfo("t", columns=[]), {"band_min": 1}, 10)


def test_table_names_must_look_like_identifiers() -> None:
    assert plain_identifier(" radio.observations ") == "radio.observations"
    for bad in ("radio.observations; DROP TABLE x", "a b", "x'--", 5, "a.b.c.d"):
        with pytest.raises(QueryError, match="not a table name"):
            plain_identifier(bad)


def test_the_inserted_code_quotes_what_it_embeds() -> None:
    code = pyvo_code("http://h/tap", "SELECT * FROM t WHERE x = 'a\"b'", 10)
    compile(code, "cell", "exec")  # valid Python, the query a single literal
    assert "run_sync('SELECT * FROM t WHERE x = \\'a\"b\\'', maxrec=10)" in code


async def test_refusals_come_before_the_server_is_asked() -> None:
    source = TapSource(name="tap", url=f"http://127.0.0.1:{free_port()}/tap", query_timeout=2)
    await source.start()  # the service is down: reported, not fatal
    query = make_query(groups=["vo.radio.example"])
    for adql, message in FORBIDDEN:
        if message is not None:
            with pytest.raises(QueryError, match=message):
                await source.run_query({"adql": adql}, query)
    for bad, message in [
        ("not a dict", "JSON object"),
        ({}, "needs adql or a table"),
        ({"adql": "SELECT 1", "table": "t"}, "not both"),
        ({"adql": "SELECT 1", "maxrec": 0}, "maxrec must be"),
        ({"adql": "SELECT 1", "maxrec": "5"}, "maxrec must be"),
        ({"table": "x; DROP TABLE y"}, "not a table name"),
    ]:
        with pytest.raises(QueryError, match=message):
            await source.run_query(bad, query)  # type: ignore[arg-type]
    # what passes the guard reaches for the (absent) server
    with pytest.raises(SourceUnavailable):
        await source.run_query({"adql": "SELECT 1 FROM t"}, query)
    assert not (await source.health()).ok
    private = TapSource(name="tap", url=source.url, vo="vo.radio.example", visibility="vo")
    with pytest.raises(ActionRefused, match="private"):
        await private.run_query({"adql": "SELECT 1 FROM t"}, make_query(groups=["vo.hep.example"]))
    assert (await private.search(make_query(groups=["vo.hep.example"]))).total == 0
