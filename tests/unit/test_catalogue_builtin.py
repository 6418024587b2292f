"""The built-in catalogue source: harvest, search, get with access code, fallback, rebuild.

A real source on a temporary state folder: a small archive of real files (Parquet, NetCDF,
FITS) harvested by the real harvester, then searched.  The index folder is removed under the
running source: searches keep answering through SQLite, the health says degraded, and a
rebuild brings the index back.  The *Insert code* cells are executed against the real files.
The records' database may be PostgreSQL: the harvest command and the source on either database
(``database`` fixture), and the deprecated ``db_path``.
"""

from __future__ import annotations

import asyncio
import shutil
import stat
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr
from astropy.io import fits

from continuum_hub.catalogue.cli import main as harvest_main
from continuum_hub.catalogue.model import Entry, Replica, make_query
from continuum_hub.catalogue.sources.builtin import BuiltinSource, access_code

pytestmark = pytest.mark.catalogue

RADIO = ["vo.radio.example"]


def make_entry(identifier: str, *replicas: Replica, **fields) -> Entry:
    fields.setdefault("kind", "file")
    fields.setdefault("title", identifier)
    return Entry(
        id=f"demo:{identifier}",
        source="demo",
        identifier=identifier,
        replicas=list(replicas),
        **fields,
    )


def make_archive(root: Path) -> None:
    (root / "hep").mkdir(parents=True)
    (root / "radio").mkdir()
    pq.write_table(pa.table({"muon_pt": [1.5, 2.5, 3.5]}), root / "hep" / "muons.parquet")
    xr.Dataset(
        {"flux": (("time",), np.arange(4.0), {"units": "Jy"})},
        coords={
            "time": np.array(
                ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"], dtype="datetime64[ns]"
            )
        },
        attrs={"title": "Pulsar flux series"},
    ).to_netcdf(root / "radio" / "pulsar.nc", engine="h5netcdf")
    fits.PrimaryHDU(np.zeros((4, 4), dtype="float32")).writeto(root / "radio" / "sky.fits")


@pytest.fixture
async def source(tmp_path: Path):
    make_archive(tmp_path / "alpha" / "archive")
    source = BuiltinSource(
        name="demo",
        state_dir=str(tmp_path / "state"),
        site_roots={"alpha": [str(tmp_path / "alpha" / "archive")]},
        harvest=[
            {"path": str(tmp_path / "alpha" / "archive"), "site": "alpha", "kind": "files"},
            {"path": str(tmp_path / "nowhere"), "site": "beta", "kind": "files"},
        ],
        harvest_interval=0,
    )
    await source.start()
    await source.harvest_now()
    await source.rebuild()
    yield source
    await source.stop()


async def test_harvested_entries_are_searchable(source: BuiltinSource, tmp_path: Path):
    db, index_dir = source.paths()
    assert db == tmp_path / "state" / "builtin-demo.sqlite"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600 and index_dir.is_dir()
    report = source.last_harvest["reports"][str(tmp_path / "alpha" / "archive")]
    assert report["new"] == 3
    # a harvest spec that fails is reported and does not stop the others
    assert "error" in source.last_harvest["reports"][str(tmp_path / "nowhere")]
    page = await source.search(make_query("muons", with_facets=True))
    assert [e.id for e in page.entries] == ["demo:alpha/archive/hep/muons.parquet"]
    assert page.facets["format"] == {"parquet": 1}
    everything = await source.search(make_query("", with_facets=True))
    assert everything.total == 3
    assert everything.facets["site"] == {"alpha": 3}
    health = await source.health()
    assert health.ok and health.message == "3 entries"


async def test_access_code_runs(source: BuiltinSource):
    page = await source.search(make_query("", limit=10))
    opened = {}
    for found in page.entries:
        entry = await source.get(found.identifier, make_query(sites=["alpha"]))
        assert entry is not None and entry.access["site"] == "alpha"
        assert entry.replicas[0].location.endswith("archive")
        namespace: dict = {}
        exec(entry.access["code"], namespace)  # noqa: S102 (the inserted cell, run for real)
        opened[entry.format] = namespace
    assert opened["parquet"]["table"].column_names == ["muon_pt"]
    assert float(opened["netcdf"]["ds"]["flux"].sum()) == 6.0
    assert opened["fits"]["hdul"][0].data.shape == (4, 4)
    opened["fits"]["hdul"].close()
    opened["netcdf"]["ds"].close()


async def test_removed_index_falls_back_then_rebuilds(source: BuiltinSource):
    _, index_dir = source.paths()
    shutil.rmtree(index_dir)
    page = await source.search(make_query("pulsar"))
    assert [e.format for e in page.entries] == ["netcdf"]
    health = await source.health()
    assert health.ok and health.message.startswith("degraded:")
    assert await source.rebuild() == 3
    assert (index_dir / "meta.json").exists()
    assert (await source.health()).message == "3 entries"
    assert [e.format for e in (await source.search(make_query("pulsa"))).entries] == ["netcdf"]


async def test_private_entry_not_served_by_id(source: BuiltinSource):
    secret = make_entry(
        "radio/secret.zarr",
        Replica("beta", "", "/srv/beta/radio/secret.zarr"),
        kind="dataset",
        title="Embargoed radio cube",
        format="zarr",
        vo="vo.radio.example",
        visibility="vo",
    )
    assert source.store is not None
    source.store.upsert([secret])
    assert await source.get("radio/secret.zarr", make_query(groups=["vo.hep.example"])) is None
    assert (await source.search(make_query("embargoed", groups=["vo.hep.example"]))).total == 0
    seen = await source.get("radio/secret.zarr", make_query(groups=RADIO))
    assert seen is not None
    assert seen.access["code"] == (
        "import xarray as xr\n\nds = xr.open_zarr('/srv/beta/radio/secret.zarr')\nds"
    )


def test_access_code_prefers_the_chosen_site():
    entry = make_entry(
        "x",
        Replica("alpha", "a", "/a/x.root"),
        Replica("beta", "b", "/b/x.root"),
        Replica("gamma", "g", "/g/x.root", state="replicating"),
        format="root",
    )
    assert access_code(entry)["path"] == "/a/x.root"
    assert access_code(entry, "beta")["code"] == (
        "import uproot\n\nfile = uproot.open('/b/x.root')\nfile.keys()"
    )
    # a copy still replicating is not offered while an available one exists
    assert access_code(entry, "gamma")["site"] == "alpha"
    odd = make_entry("y", Replica("alpha", "a", '/a/it\'s\n"odd".bin'))
    assert access_code(odd)["code"] == "path = " + repr('/a/it\'s\n"odd".bin')


def test_harvest_specs_are_validated():
    with pytest.raises(ValueError, match="path and a site"):
        BuiltinSource(name="demo", harvest=[{"path": "/x"}])
    with pytest.raises(ValueError, match="harvest kind"):
        BuiltinSource(name="demo", harvest=[{"path": "/x", "site": "alpha", "kind": "ftp"}])


async def test_entries_are_the_sources_whatever_a_harvest_named_them(source: BuiltinSource):
    assert source.store is not None
    # the harvest CLI's default source name differs from this source's
    cli = make_entry("alpha/cli/runs.csv", Replica("alpha", "", "/srv/runs.csv"), title="Runs")
    cli.source, cli.id = "builtin", "builtin:alpha/cli/runs.csv"
    source.store.upsert([cli])
    page = await source.search(make_query("runs", with_facets=True))
    assert [e.id for e in page.entries] == ["demo:alpha/cli/runs.csv"]
    assert page.facets["source"] == {"demo": 1}
    assert (await source.search(make_query("runs", sources=["demo"]))).total == 1
    assert (await source.search(make_query("runs", sources=["other"]))).total == 0
    got = await source.get("alpha/cli/runs.csv", make_query())
    assert got is not None and got.id == "demo:alpha/cli/runs.csv" and got.source == "demo"


async def test_records_on_either_database(database, tmp_path: Path):
    """The harvest command writes into ``db_url`` and the source serves it: through its index,
    and through the database's own search once the index folder is gone."""
    make_archive(tmp_path / "alpha" / "archive")
    url = database("builtin")
    archive = str(tmp_path / "alpha" / "archive")
    # the command's own function (its process is tested in test_catalogue_harvest_sources.py)
    argv = ["harvest", archive, "--site", "alpha", "--db-url", url, "--source", "demo"]
    assert await asyncio.to_thread(harvest_main, argv) == 0
    source = BuiltinSource(name="demo", db_url=url, state_dir=str(tmp_path / "state"))
    db, index_dir = source.paths()
    assert index_dir.parent == tmp_path / "state" and (db is None) == ("postgresql" in url)
    await source.start()
    try:
        assert await source.rebuild() == 3
        page = await source.search(make_query("muons"))
        assert [e.id for e in page.entries] == ["demo:alpha/archive/hep/muons.parquet"]
        shutil.rmtree(index_dir)
        fallback = await source.search(make_query("puls", with_facets=True))
        assert [e.format for e in fallback.entries] == ["netcdf"]
        assert fallback.facets["site"] == {"alpha": 1}
        assert (await source.health()).message.startswith("degraded: 3 entries")
    finally:
        await source.stop()


def test_db_path_is_a_deprecated_alias_of_a_sqlite_db_url(tmp_path: Path):
    old = BuiltinSource(name="demo", db_path=str(tmp_path / "old.sqlite"))
    assert old.database_url() == f"sqlite:///{tmp_path / 'old.sqlite'}"
    assert old.paths() == (tmp_path / "old.sqlite", tmp_path / "old.index")
    both = BuiltinSource(name="demo", db_path="ignored.sqlite", db_url="sqlite:////x/y.sqlite")
    assert both.paths()[0] == Path("/x/y.sqlite")
