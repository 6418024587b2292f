"""The built-in catalogue's store, full-text index and fallback, on real SQLite, PostgreSQL
and tantivy.

A few dozen entries in a temporary folder: store round trips (upsert, delete, fingerprints,
the boxes), each on SQLite and on PostgreSQL (the ``database`` fixture; ``-m "not postgres"``
keeps SQLite only), then the same searches through the tantivy index and through the fallback
on each database (FTS5, tsvector) — ranking, prefixes, facets, every filter, visibility in
hits, totals and facets, and hostile search text.  The source-level behaviour (fallback when
the index folder goes, rebuild, access code) is in ``test_catalogue_builtin.py``.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from continuum_hub.catalogue.index import fulltext
from continuum_hub.catalogue.index.fallback import FallbackSearch, match_expression
from continuum_hub.catalogue.index.fulltext import FullTextIndex, IndexUnavailable
from continuum_hub.catalogue.index.store import CatalogueStore
from continuum_hub.catalogue.index.terms import epoch, words
from continuum_hub.catalogue.model import Entry, Query, Replica, make_query
from fixtures.databases import new_postgres_schema

pytestmark = pytest.mark.catalogue

HEP = frozenset({"vo.hep.example"})
RADIO = frozenset({"vo.radio.example"})


def entry(identifier: str, title: str, **fields) -> Entry:
    sites = fields.pop("at", ["alpha"])
    return Entry(
        id=f"demo:{identifier}",
        source="demo",
        identifier=identifier,
        kind=fields.pop("kind", "file"),
        title=title,
        replicas=[Replica(site, f"/srv/{site}", f"/srv/{site}/{identifier}") for site in sites],
        **fields,
    )


def sample() -> list[Entry]:
    """Public HEP and radio data, radio-private data, times and sizes to filter on."""
    out = [
        entry(
            "hep/muons-2024.root",
            "Muon run 2024",
            format="root",
            vo="vo.hep.example",
            size=5_000,
            time_start="2024-03-01",
            time_end="2024-03-31",
            description="collision events, muon triggers",
        ),
        entry(
            "hep/jets.parquet",
            "Jet energies",
            format="parquet",
            vo="vo.hep.example",
            size=80_000,
            time_start="2023-01-01T00:00:00Z",
            time_end="2023-06-30T00:00:00Z",
        ),
        entry(
            "radio/lofar-survey.fits",
            "LOFAR radio survey field 12",
            format="fits",
            vo="vo.radio.example",
            at=["alpha", "beta"],
            size=2_000_000,
            time_start="2022-05-01",
            time_end="2022-05-02",
            metadata={"telescope": "LOFAR", "bbox": [10.0, 40.0, 12.0, 42.0]},
        ),
        entry(
            "radio/pulsar.nc",
            "Pulsar timing",
            format="netcdf",
            vo="vo.radio.example",
            at=["beta"],
            size=300,
            description="radiometer pulsar timing series",
        ),
        entry(
            "radio/private-calib.zarr",
            "Radio calibration tables (embargoed)",
            format="zarr",
            kind="dataset",
            vo="vo.radio.example",
            visibility="vo",
            at=["beta"],
            size=10,
            metadata={"bbox": [100.0, -5.0, 101.0, 5.0]},
        ),
        entry(
            "radio/private-sky.fits",
            "Secret radio sky",
            format="fits",
            vo="vo.radio.example",
            visibility="vo",
            at=["alpha"],
        ),
        entry(
            "hep/private-higgs.root",
            "Higgs candidates (blinded)",
            format="root",
            vo="vo.hep.example",
            visibility="vo",
            at=["alpha"],
        ),
    ]
    out += [
        entry(
            f"misc/file-{i:02d}.nc",
            f"Climate reanalysis part {i}",
            format="netcdf",
            description="temperature wind radiation",
            size=1000 + i,
        )
        for i in range(20)
    ]
    return out


@pytest.fixture
def store(database) -> CatalogueStore:
    store = CatalogueStore(database("cat"))
    store.upsert(sample())
    return store


def built_index(store: CatalogueStore, path: Path) -> FullTextIndex:
    index = FullTextIndex(store, path, heap_bytes=15_000_000)
    assert not index.ready
    assert index.rebuild() == store.count()
    assert index.ready
    return index


@pytest.fixture
def index(store: CatalogueStore, tmp_path: Path) -> FullTextIndex:
    return built_index(store, tmp_path / "cat.index")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[CatalogueStore, FullTextIndex]:
    """One store and index for the tests that only search (building them takes a while)."""
    folder = tmp_path_factory.mktemp("catalogue")
    store = CatalogueStore(folder / "cat.sqlite")
    store.upsert(sample())
    return store, built_index(store, folder / "cat.index")


@pytest.fixture(scope="module")
def shared_postgres(request: pytest.FixtureRequest) -> CatalogueStore:
    """The same entries in PostgreSQL, for its fallback (tsvector) search."""
    store = CatalogueStore(new_postgres_schema(request.getfixturevalue("postgres_cluster"), "cat"))
    store.upsert(sample())
    return store


@pytest.fixture(
    params=["index", "fallback", pytest.param("fallback-postgresql", marks=pytest.mark.postgres)]
)
def searcher(request, shared: tuple[CatalogueStore, FullTextIndex]):
    """Every search path answers the same questions the same way."""
    store, index = shared
    if request.param == "index":
        return index.page
    if request.param == "fallback-postgresql":
        return FallbackSearch(request.getfixturevalue("shared_postgres")).page
    return FallbackSearch(store).page


def ids(page) -> list[str]:
    return [e.identifier for e in page.entries]


# -- the store -------------------------------------------------------------------------------


def test_store_file_is_private_and_round_trips(store: CatalogueStore):
    if store.path is not None:
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    got = store.get("radio/lofar-survey.fits")
    assert got is not None
    assert got.id == "demo:radio/lofar-survey.fits"
    assert got.sites == ["alpha", "beta"]
    assert [r.site for r in got.replicas] == ["alpha", "beta"]
    assert got.metadata["telescope"] == "LOFAR"
    assert store.get("nope") is None
    assert store.count() == 27
    # a second store on the same file (a restarted service) sees the same
    assert CatalogueStore(store.url).count() == 27


def test_upsert_replaces_by_identifier_and_delete_removes(store: CatalogueStore):
    changed = entry("hep/jets.parquet", "Jet energies v2", format="parquet", at=["beta"])
    assert store.upsert([changed]) == 1
    assert store.count() == 27
    got = store.get("hep/jets.parquet")
    assert got.title == "Jet energies v2" and [r.site for r in got.replicas] == ["beta"]
    assert store.delete(["hep/jets.parquet", "never-there"]) == 1
    assert store.get("hep/jets.parquet") is None and store.count() == 26


def test_fingerprints_by_prefix(store: CatalogueStore):
    store.upsert(
        [entry("radio/a.fits", "A"), entry("hep/b.root", "B")],
        fingerprints={"radio/a.fits": (1700000000.5, 123), "hep/b.root": (1.0, 2)},
    )
    assert store.fingerprints("radio/") == {"radio/a.fits": (1700000000.5, 123)}
    assert set(store.fingerprints()) == {"radio/a.fits", "hep/b.root"}
    store.upsert([], fingerprints={"radio/a.fits": (2.0, 5)})
    assert store.fingerprints("radio/a") == {"radio/a.fits": (2.0, 5)}
    store.delete(["radio/a.fits"])
    assert store.fingerprints("radio/") == {}


def test_bounding_boxes_in_the_rtree(store: CatalogueStore):
    assert store.within(11.0, 41.0, 11.5, 41.5) == ["radio/lofar-survey.fits"]
    assert store.within(0.0, -90.0, 360.0, 90.0) == [
        "radio/lofar-survey.fits",
        "radio/private-calib.zarr",
    ]
    store.delete(["radio/private-calib.zarr"])
    assert store.within(100.5, 0.0, 100.6, 1.0) == []


def test_terms_and_times():
    assert words('radio "OR" NEAR(a b) col:x -- ; DROP TABLE') == [
        "radio",
        "or",
        "near",
        "a",
        "b",
        "col",
        "x",
        "drop",
        "table",
    ]
    assert words("x" * 100) == []
    assert epoch("2024-01-01") == 1704067200
    assert epoch("2024-01-01", end=True) == 1704067200 + 86399
    assert epoch("2024-01-01T00:00:00Z") == epoch("2024-01-01T00:00:00+00:00")
    assert epoch("not a time") is None
    assert match_expression('a" OR title:*') == '"a" "or" "title"*'


# -- searching, both paths -------------------------------------------------------------------


def test_ranking_and_prefix(searcher):
    page = searcher(make_query("radio survey", groups=RADIO))
    assert ids(page)[0] == "radio/lofar-survey.fits"
    # the last word is a prefix: "radi" finds radio, radiometer, radiation
    found = set(ids(searcher(make_query("radi", groups=RADIO, limit=50))))
    assert {"radio/lofar-survey.fits", "radio/pulsar.nc", "misc/file-00.nc"} <= found
    assert "hep/jets.parquet" not in found
    # a title match ranks above a description-only match
    assert ids(searcher(make_query("pulsar", groups=RADIO)))[0] == "radio/pulsar.nc"
    assert searcher(make_query("zzzunknown", groups=RADIO)).total == 0


def test_facets_count_the_matching_set(searcher):
    page = searcher(make_query("", groups=(), with_facets=True, limit=5))
    assert page.total == 24 and len(page.entries) == 5
    assert page.facets["format"] == {"netcdf": 21, "root": 1, "parquet": 1, "fits": 1}
    assert page.facets["site"] == {"alpha": 23, "beta": 2}
    # "radio" is also a prefix: the pulsar's "radiometer" matches too
    narrowed = searcher(make_query("radio", sites=["beta"], groups=RADIO, with_facets=True))
    assert set(ids(narrowed)) == {
        "radio/lofar-survey.fits",
        "radio/private-calib.zarr",
        "radio/pulsar.nc",
    }
    assert narrowed.facets["site"] == {"alpha": 1, "beta": 3}
    assert narrowed.facets["kind"] == {"file": 2, "dataset": 1}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"sites": ["beta"]}, {"radio/lofar-survey.fits", "radio/pulsar.nc"}),
        ({"vos": ["vo.hep.example"]}, {"hep/muons-2024.root", "hep/jets.parquet"}),
        ({"kinds": ["dataset"], "groups": RADIO}, {"radio/private-calib.zarr"}),
        ({"formats": ["root", "parquet"]}, {"hep/muons-2024.root", "hep/jets.parquet"}),
        ({"sources": ["other"]}, set()),
        ({"time_from": "2024-03-15", "time_to": "2024-12-31"}, {"hep/muons-2024.root"}),
        ({"time_from": "2022-01-01", "time_to": "2022-05-01"}, {"radio/lofar-survey.fits"}),
        ({"time_to": "2023-01-01"}, {"radio/lofar-survey.fits", "hep/jets.parquet"}),
        ({"size_min": 50_000}, {"hep/jets.parquet", "radio/lofar-survey.fits"}),
        ({"size_max": 999, "groups": RADIO}, {"radio/pulsar.nc", "radio/private-calib.zarr"}),
    ],
    ids=[
        "site",
        "vo",
        "kind",
        "formats",
        "source",
        "time",
        "time-edge",
        "time-to",
        "size-min",
        "size-max",
    ],
)
def test_filters(searcher, filters: dict, expected: set[str]):
    page = searcher(make_query("", limit=100, **filters))
    assert set(ids(page)) == expected
    assert page.total == len(expected)


def test_private_entries_stay_in_their_vo(searcher):
    hep = searcher(make_query("radio", groups=HEP, with_facets=True, limit=100))
    assert not [e for e in hep.entries if e.visibility != "public"]
    assert "radio/private-calib.zarr" not in ids(hep)
    radio = searcher(make_query("radio", groups=RADIO, with_facets=True, limit=100))
    assert {"radio/private-calib.zarr", "radio/private-sky.fits"} <= set(ids(radio))
    # totals and facets count only what the user may see
    assert hep.total == radio.total - 2
    assert hep.facets["kind"].get("dataset", 0) == 0
    assert radio.facets["kind"]["dataset"] == 1
    # carol (no groups) sees no private entry of either VO at all
    carol = searcher(make_query("", with_facets=True, limit=100))
    assert carol.total == 24 and "vo" not in {e.visibility for e in carol.entries}
    # asking for the VO by filter does not open it
    assert searcher(make_query("secret", vos=["vo.radio.example"], groups=HEP)).total == 0


@pytest.mark.parametrize(
    "text",
    [
        'radio" OR "*',
        "title:radio NOT pulsar",
        "radio AND (survey OR NEAR(field 12))",
        "'; DROP TABLE entries; --",
        "radio*^2~ [x TO y] {a} \\",
        "ra",
        "r",
        "   ",
        "é ü 日本",
    ],
    ids=[
        "quote",
        "column",
        "operators",
        "sql",
        "syntax",
        "short-prefix",
        "one-letter",
        "blank",
        "unicode",
    ],
)
def test_hostile_text_is_just_words(searcher, shared, text: str):
    page = searcher(make_query(text, groups=HEP, with_facets=True))
    assert page.total is not None and page.total >= 0
    assert all(e.visibility == "public" for e in page.entries)
    assert shared[0].count() == 27


def test_long_text_is_bounded(searcher):
    with pytest.raises(ValueError, match="too long"):
        make_query("radio " * 2000)
    page = searcher(make_query(("radio survey " * 40)[:500], groups=HEP))
    assert ids(page)[0] == "radio/lofar-survey.fits"
    # 10 kB of distinct words reaching a source unvalidated: only the first words count
    flood = " ".join(f"w{i}" for i in range(2000))
    assert len(flood) > 10_000
    assert searcher(Query(text="radio " + flood, groups=HEP)).total == 0
    assert searcher(Query(text="survey radio " + "x" * 10_000, groups=HEP)).total == 1


def test_paging(searcher):
    first = searcher(make_query("climate", limit=5))
    second = searcher(make_query("climate", limit=5, offset=5))
    assert first.total == second.total == 20
    assert len(first.entries) == len(second.entries) == 5
    assert not set(ids(first)) & set(ids(second))


def test_index_follows_writes(index: FullTextIndex, store: CatalogueStore):
    store.upsert([entry("new/quasar.fits", "Quasar spectra", format="fits")])
    assert ids(index.page(make_query("quasar"))) == ["new/quasar.fits"]
    store.upsert([entry("new/quasar.fits", "Renamed spectra", format="fits")])
    assert index.page(make_query("quasar")).total == 0
    assert index.page(make_query("renamed")).total == 1
    store.delete(["new/quasar.fits"])
    assert index.page(make_query("renamed")).total == 0
    assert index.page(make_query("")).total == 24


def test_writes_of_another_process_are_picked_up(
    index: FullTextIndex, store: CatalogueStore, tmp_path: Path
):
    # the harvest CLI: its own store on the same file, nobody listening to it
    other = CatalogueStore(store.url)
    other.upsert([entry("cli/quasar.fits", "Quasar spectra", format="fits")])
    assert ids(index.page(make_query("quasar"))) == ["cli/quasar.fits"]
    other.upsert([entry("cli/quasar.fits", "Renamed spectra", format="fits")])
    assert index.page(make_query("quasar")).total == 0
    # written while no index was open: caught up when it opens
    index.close()
    other.upsert([entry("late.nc", "Late arrival", format="netcdf")])
    again = FullTextIndex(store, tmp_path / "cat.index")
    assert again.open()
    assert ids(again.page(make_query("late"))) == ["late.nc"]
    # a deletion elsewhere: its hit is skipped, and the next start finds the index stale
    other.delete(["late.nc"])
    assert again.page(make_query("late")).entries == []
    again.close()
    stale = FullTextIndex(store, tmp_path / "cat.index")
    assert not stale.open() and "the store 28" in stale.reason
    with pytest.raises(IndexUnavailable):
        stale.search(make_query("late"))
    assert stale.rebuild() == 28 and stale.ready
    assert stale.page(make_query("late")).total == 0


def test_a_bulk_write_elsewhere_is_rebuilt_not_synced(
    index: FullTextIndex, store: CatalogueStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(fulltext, "SYNC_LIMIT", 2)
    other = CatalogueStore(store.url)
    other.upsert([entry(f"bulk/{i}.nc", f"Bulk {i}") for i in range(3)])
    with pytest.raises(IndexUnavailable, match="3 entries changed"):
        index.search(make_query("bulk"))
    assert not index.ready
    assert FallbackSearch(store).page(make_query("bulk")).total == 3
    assert index.rebuild() == 30 and index.page(make_query("bulk")).total == 3


def test_missing_or_corrupt_index_is_not_used(
    index: FullTextIndex, store: CatalogueStore, tmp_path: Path
):
    index.close()
    (tmp_path / "cat.index" / "synced").unlink()
    unstamped = FullTextIndex(store, tmp_path / "cat.index")
    assert not unstamped.open() and "cannot be read" in unstamped.reason
    assert unstamped.rebuild() == 27 and unstamped.ready
    unstamped.close()
    for path in (tmp_path / "cat.index").iterdir():
        # replaced, never truncated in place: tantivy's threads may still have the old files
        # memory-mapped, and a mapped file cut short kills the process with SIGBUS
        path.unlink()
        path.write_bytes(b"garbage")
    broken = FullTextIndex(store, tmp_path / "cat.index")
    assert not broken.open() and broken.reason
    shutil.rmtree(tmp_path / "cat.index")
    missing = FullTextIndex(store, tmp_path / "cat.index")
    assert not missing.open() and missing.reason == "the full-text index is missing"


def test_fallback_is_bounded(store: CatalogueStore):
    capped = FallbackSearch(store, cap=5).page(make_query("climate", with_facets=True))
    assert capped.total == 5 and capped.facets["format"] == {"netcdf": 5}
    # the newest matches are the ones kept
    assert all(int(i.split("-")[1][:2]) >= 15 for i in ids(capped))
