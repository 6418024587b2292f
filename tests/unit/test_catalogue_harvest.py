"""Harvesters (issue 11): what each reader finds in a real small file, folder metadata and
sidecars, damaged files and symbolic links, incremental re-harvest, the two-sites rule.

The files are real (written by the demo archive's writers: uproot, pyarrow, astropy, h5netcdf,
h5py, zarr); the store is the real SQLite :class:`CatalogueStore`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import h5netcdf
import numpy as np
import pytest
from astropy.io import fits

from continuum_federation import demo_archive as demo
from continuum_hub.catalogue.harvest import HarvestError, HarvestSpec, harvest
from continuum_hub.catalogue.harvest.describe import cf_times
from continuum_hub.catalogue.harvest.readers import reader_for
from continuum_hub.catalogue.index.store import CatalogueStore

pytestmark = pytest.mark.catalogue

WHEN = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
RADIO, HEP = "vo.radio.example", "vo.hep.example"


def rng() -> np.random.Generator:
    return np.random.default_rng(3)


@pytest.fixture
def store(tmp_path: Path) -> CatalogueStore:
    return CatalogueStore(tmp_path / "catalogue.sqlite")


def write_tree(root: Path) -> None:
    """Two folders, one private, a sidecar, one file of each kind the walk describes."""
    (root / "radio" / "private").mkdir(parents=True)
    (root / "hep").mkdir()
    (root / "radio" / "catalogue.yaml").write_text(
        f"title: Radio runs\nvo: {RADIO}\nvisibility: public\nkeywords: [radio]\n"
        "description: Observations\n"
    )
    (root / "radio" / "private" / "catalogue.yaml").write_text(
        "visibility: vo\nkeywords: [embargoed]\n"
    )
    demo.write_fits(root / "radio" / "obs-1.fits", rng(), 150.0, 2.0, WHEN, "M81")
    demo.write_fits(root / "radio" / "private" / "deep-1.fits", rng(), 10.0, -5.0, WHEN, "Deep")
    (root / "radio" / "obs-1.fits.yaml").write_text(
        "title: First observation\nkeywords: [calibrated]\npi: alice\ntime_start: '2024-04-30'\n"
    )
    demo.write_netcdf(root / "radio" / "vis-1.nc", rng(), WHEN)
    demo.write_root(root / "hep" / "events.root", rng())
    demo.write_parquet(root / "hep" / "table.parquet", rng(), WHEN.replace(tzinfo=None))


def test_readers_describe_each_format(tmp_path: Path) -> None:
    writers = {
        "a.root": lambda p: demo.write_root(p, rng(), entries=50, title="Run 7"),
        "b.parquet": lambda p: demo.write_parquet(p, rng(), WHEN.replace(tzinfo=None), rows=300),
        "c.fits": lambda p: demo.write_fits(p, rng(), 201.0, -43.0, WHEN, "Cen A"),
        "d.nc": lambda p: demo.write_netcdf(p, rng(), WHEN, steps=10),
        "e.h5": lambda p: demo.write_hdf5(p, rng(), WHEN, samples=20),
        "f.zarr": lambda p: demo.write_zarr(p, rng(), WHEN),
    }
    found = {}
    for name, write in writers.items():
        write(tmp_path / name)
        reader = reader_for(tmp_path / name)
        assert reader is not None
        found[name] = reader(tmp_path / name)
    root = found["a.root"]
    assert root.format == "root" and root.title == "Run 7"
    assert {"events/px", "events/n_jets"} <= {v["name"] for v in root.variables}
    assert {"key": "events;1", "class": "TTree", "entries": 50} in root.details["objects"]
    table = found["b.parquet"]
    assert table.details["rows"] == 300 and table.details["row_groups"] == 2
    assert (table.time_start, table.time_end) == ("2024-05-01T12:00:00Z", "2024-05-01T12:05:58Z")
    image = found["c.fits"]
    assert image.details["TELESCOP"] == "LOFAR" and image.details["BUNIT"] == "JY/BEAM"
    assert (
        image.position == {"ra": 201.0, "dec": -43.0} and image.time_start == "2024-05-01T12:00:00Z"
    )
    xmin, ymin, xmax, ymax = image.bbox
    assert xmin < 201.0 < xmax and ymin < -43.0 < ymax and xmax - xmin < 1
    table = tmp_path / "g.fits"
    columns = [fits.Column(name="flux", format="E", unit="Jy", array=np.ones(5))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(table)
    described = reader_for(table)(table)
    assert described.variables == [
        {"name": "HDU1/flux", "dims": ["row"], "shape": [5], "dtype": "E", "units": "Jy"}
    ]
    vis = found["d.nc"]
    assert vis.format == "netcdf" and vis.dimensions == {"time": 10, "baseline": 6, "channel": 4}
    amplitude = next(v for v in vis.variables if v["name"] == "amplitude")
    assert amplitude["units"] == "Jy" and amplitude["dims"] == ["time", "baseline", "channel"]
    assert (vis.time_start, vis.time_end) == ("2024-05-01T12:00:00Z", "2024-05-01T12:01:30Z")
    series = found["e.h5"]
    assert series.format == "hdf5" and series.time_end == "2024-05-01T12:00:09Z"
    cube = found["f.zarr"]
    assert cube.format == "zarr" and cube.dimensions == {"time": 8, "y": 16, "x": 16}
    assert cube.time_end == "2024-05-01T19:00:00Z"


def test_netcdf_lon_lat_box_and_acdd_times(tmp_path: Path) -> None:
    path = tmp_path / "grid.nc"
    with h5netcdf.File(path, "w") as nc:
        nc.dimensions = {"lat": 3, "lon": 4}
        nc.attrs.update(time_coverage_start="2020-01-01", time_coverage_end="2020-12-31T23:00Z")
        nc.create_variable("lat", ("lat",), "f8")[:] = [-10.0, 0.0, np.nan]
        nc.create_variable("lon", ("lon",), "f8")[:] = [100.0, 101.0, 102.0, 103.5]
    desc = reader_for(path)(path)
    assert desc.bbox == [100.0, -10.0, 103.5, 0.0]
    assert (desc.time_start, desc.time_end) == ("2020-01-01T00:00:00Z", "2020-12-31T23:00:00Z")
    with h5netcdf.File(path, "a") as nc:  # an ACDD box wins over the coordinates
        nc.attrs.update(geospatial_lon_min=1, geospatial_lat_min=2)
        nc.attrs.update(geospatial_lon_max=3.5, geospatial_lat_max=4)
    assert reader_for(path)(path).bbox == [1.0, 2.0, 3.5, 4.0]


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("days since 2000-01-01", ("2000-01-02T00:00:00Z", "2000-01-11T00:00:00Z")),
        ("hours since 2020-02-29 23:00:00", ("2020-03-01T00:00:00Z", "2020-03-01T09:00:00Z")),
        ("furlongs since 2000-01-01", (None, None)),
        ("days since yesterday", (None, None)),
    ],
    ids=["days", "hours", "unknown-unit", "bad-epoch"],
)
def test_cf_time_units(units: str, expected: tuple) -> None:
    assert cf_times(units, 1, 10) == expected


def test_folder_metadata_and_sidecars_merge(tmp_path: Path, store: CatalogueStore) -> None:
    root = tmp_path / "archive"
    write_tree(root)
    report = harvest(store, {"path": root, "site": "beta", "vo": HEP})
    assert (report.seen, report.new, report.problems) == (5, 5, 0)
    obs = store.get("beta/archive/radio/obs-1.fits")
    assert obs is not None and obs.id == "builtin:beta/archive/radio/obs-1.fits"
    assert (obs.title, obs.vo, obs.visibility, obs.description) == (
        "First observation",
        RADIO,
        "public",
        "Observations",
    )
    assert obs.metadata["keywords"] == ["radio", "calibrated"]
    assert (obs.time_start, obs.time_end) == ("2024-04-30T00:00:00Z", "2024-05-01T12:00:00Z")
    assert obs.metadata["pi"] == "alice" and obs.metadata["collection"] == "Radio runs"
    assert obs.replicas[0].site == "beta" and obs.replicas[0].path == str(
        root / "radio" / "obs-1.fits"
    )
    deep = store.get("beta/archive/radio/private/deep-1.fits")
    assert deep is not None
    assert (deep.vo, deep.visibility, deep.metadata["keywords"]) == (
        RADIO,
        "vo",
        ["radio", "embargoed"],
    )
    events = store.get("beta/archive/hep/events.root")
    assert events is not None and (events.vo, events.format, events.kind) == (HEP, "root", "file")


def test_broken_files_are_counted_not_fatal(tmp_path: Path, store: CatalogueStore) -> None:
    root = tmp_path / "archive"
    write_tree(root)
    (root / "hep" / "broken.root").write_bytes(b"not a root file")
    (root / "radio" / "broken.fits").write_bytes(b"SIMPLE  = nonsense")
    (root / "radio" / "classic.nc").write_bytes(b"CDF\x01" + bytes(60))
    (root / "hep" / "table.parquet.json").write_text("{not json")
    report = harvest(store, {"path": root, "site": "alpha"})
    assert (report.seen, report.new, report.problems) == (8, 4, 4)
    assert any("classic.nc" in p and "NetCDF-3" in p for p in report.problem_list)
    assert store.count() == 4
    # a broken catalogue.yaml skips its folder: its files never become public
    (root / "radio" / "private" / "catalogue.yaml").write_text("visibility: [")
    report = harvest(store, {"path": root, "site": "alpha"})
    assert any("private/catalogue.yaml (folder skipped)" in p for p in report.problem_list)
    assert store.get("alpha/archive/radio/private/deep-1.fits") is None


def test_symbolic_links_out_of_the_root_are_ignored(tmp_path: Path, store: CatalogueStore) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    demo.write_fits(outside / "secret.fits", rng(), 1.0, 1.0, WHEN, "Secret")
    root = tmp_path / "archive"
    root.mkdir()
    demo.write_fits(root / "inside.fits", rng(), 2.0, 2.0, WHEN, "Inside")
    (root / "escape.fits").symlink_to(outside / "secret.fits")
    (root / "escape-folder").symlink_to(outside, target_is_directory=True)
    (root / "alias.fits").symlink_to(root / "inside.fits")
    shutil.copyfile(root / "inside.fits", root / "odd\nname.fits")
    report = harvest(store, {"path": root, "site": "alpha"})
    assert report.new == 2 and report.problems == 3
    assert store.get("alpha/archive/alias.fits") is not None
    assert store.get("alpha/archive/escape.fits") is None
    assert all("secret" not in i for i in store.fingerprints())


def test_incremental_reharvest(tmp_path: Path, store: CatalogueStore) -> None:
    root = tmp_path / "archive"
    write_tree(root)
    spec = {"path": root, "site": "beta"}
    assert harvest(store, spec).new == 5
    again = harvest(store, spec)
    assert (again.unchanged, again.new, again.changed, again.removed) == (5, 0, 0, 0)
    # an unchanged file is not read again: garbage with the same size and mtime goes unnoticed
    table = root / "hep" / "table.parquet"
    info = table.stat()
    table.write_bytes(b"x" * info.st_size)
    os.utime(table, ns=(info.st_atime_ns, info.st_mtime_ns))
    # touch one, delete one
    vis = root / "radio" / "vis-1.nc"
    os.utime(vis, (info.st_atime + 10, info.st_mtime + 10))
    (root / "hep" / "events.root").unlink()
    third = harvest(store, spec)
    assert (third.seen, third.changed, third.removed, third.unchanged, third.problems) == (
        4,
        1,
        1,
        3,
        0,
    )
    assert store.get("beta/archive/hep/events.root") is None
    assert store.count() == 4
    # editing a folder's catalogue.yaml re-describes the files below it
    (root / "radio" / "catalogue.yaml").write_text(f"vo: {RADIO}\nvisibility: vo\n")
    os.utime(root / "radio" / "catalogue.yaml", (info.st_atime + 20, info.st_mtime + 20))
    fourth = harvest(store, spec)
    assert fourth.changed == 3
    assert store.get("beta/archive/radio/vis-1.nc").visibility == "vo"


def test_same_data_on_two_sites_is_one_entry(tmp_path: Path, store: CatalogueStore) -> None:
    alpha, beta = tmp_path / "alpha" / "archive", tmp_path / "beta" / "archive"
    for site_root in (alpha, beta):
        site_root.mkdir(parents=True)
    demo.write_fits(alpha / "cal.fits", rng(), 5.0, 5.0, WHEN, "Calibrator")
    shutil.copyfile(alpha / "cal.fits", beta / "cal.fits")
    demo.write_fits(beta / "own.fits", rng(), 6.0, 6.0, WHEN, "Beta only")
    assert harvest(store, {"path": alpha, "site": "alpha"}).new == 1
    assert harvest(store, {"path": beta, "site": "beta"}).new == 2
    cal = store.get("alpha/archive/cal.fits")
    assert cal is not None and cal.sites == ["alpha", "beta"]
    assert [r.path for r in cal.replicas] == [str(alpha / "cal.fits"), str(beta / "cal.fits")]
    assert store.get("beta/archive/cal.fits") is None and store.count() == 2
    # re-harvesting either site keeps both replicas
    assert harvest(store, {"path": beta, "site": "beta"}).unchanged == 2
    assert harvest(store, {"path": alpha, "site": "alpha"}).unchanged == 1
    assert store.get("alpha/archive/cal.fits").sites == ["alpha", "beta"]
    # beta's copy changes size: it gets its own entry, alpha's keeps alpha's replica
    fits.append(beta / "cal.fits", np.zeros((8, 8), dtype="float32"))
    assert harvest(store, {"path": beta, "site": "beta"}).changed == 1
    assert store.get("alpha/archive/cal.fits").sites == ["alpha"]
    assert store.get("beta/archive/cal.fits").sites == ["beta"]
    # alpha's copy goes: its entry goes with its last replica
    (alpha / "cal.fits").unlink()
    assert harvest(store, {"path": alpha, "site": "alpha"}).removed == 1
    assert store.get("alpha/archive/cal.fits") is None and store.count() == 2


def test_first_site_leaving_keeps_the_shared_entry(tmp_path: Path, store: CatalogueStore) -> None:
    alpha, beta = tmp_path / "alpha" / "data", tmp_path / "beta" / "data"
    for site_root in (alpha, beta):
        site_root.mkdir(parents=True)
        demo.write_hdf5(site_root / "ts.h5", rng(), WHEN)
    harvest(store, {"path": alpha, "site": "alpha"})
    harvest(store, {"path": beta, "site": "beta"})
    (alpha / "ts.h5").unlink()
    assert harvest(store, {"path": alpha, "site": "alpha"}).removed == 1
    kept = store.get("alpha/data/ts.h5")  # the id stays stable
    assert kept is not None and kept.sites == ["beta"]
    (beta / "ts.h5").unlink()
    assert harvest(store, {"path": beta, "site": "beta"}).removed == 1
    assert store.count() == 0 and store.fingerprints() == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"site": "alpha"}, "needs a path and a site"),
        ({"path": ".", "site": "alpha", "kind": "ftp"}, "unknown harvest kind"),
        ({"path": ".", "site": "al pha"}, "not a site name"),
        ({"path": ".", "site": "alpha", "visibility": "vo"}, "needs a vo"),
        ({"path": ".", "site": "alpha", "visibility": "secret"}, "public or vo"),
        ({"path": ".", "site": "alpha", "color": "red"}, "unknown harvest setting"),
        ({"path": "/nonexistent", "site": "alpha"}, "is not a folder"),
        ({"path": ".", "site": "alpha", "kind": "list"}, "is not a file"),
    ],
    ids=[
        "no-path",
        "kind",
        "site",
        "private-without-vo",
        "visibility",
        "unknown",
        "missing",
        "list-dir",
    ],
)
def test_bad_specs_are_refused(spec: dict, message: str, store: CatalogueStore) -> None:
    with pytest.raises(HarvestError, match=message):
        harvest(store, spec)
    assert store.count() == 0


def test_walk_bounds_cut_short_remove_nothing(tmp_path: Path, store: CatalogueStore) -> None:
    root = tmp_path / "archive"
    write_tree(root)
    assert harvest(store, {"path": root, "site": "alpha"}).new == 5
    cut = harvest(store, HarvestSpec(path=root, site="alpha", max_files=2))
    assert cut.truncated and cut.removed == 0 and store.count() == 5
    shallow = harvest(store, HarvestSpec(path=root, site="alpha", max_depth=0))
    assert (shallow.seen, shallow.removed, shallow.problems) == (0, 5, 2)
    assert "hep: deeper than max_depth: skipped" in shallow.problem_list
    assert json.loads(json.dumps(shallow.to_json()))["removed"] == 5
