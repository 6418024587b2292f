"""The demo's data archive: a few hundred small, real data files on the two sites, for the
built-in catalogue to harvest (issue 11).

:func:`generate` writes, from a fixed seed (same files, same sizes on every run):

* ``alpha/archive/hep/`` (``vo.hep.example``, public) — HEP-like runs: ROOT files with an
  ``events`` TTree (uproot) and Parquet event tables with timestamps (pyarrow);
* ``beta/archive/radio/`` (``vo.radio.example``, public) — radio-like data: FITS images with
  a sky WCS (astropy), NetCDF-4 visibilities (h5netcdf), HDF5 time series (h5py), a Zarr cube;
  ``radio/private/`` is private to the radio VO (``visibility: vo``);
* ``radio/shared/`` on *both* sites, byte for byte (one entry, two replicas, once harvested);
* ``stac/`` — a static STAC catalogue of survey tiles (pystac) and ``datasets.csv``, a list of
  datasets held elsewhere (one of them on both sites);
* folder-level ``catalogue.yaml`` files and a few sidecars (``<file>.yaml``/``.json``).

Everything is world-readable (jobs and kernels run as the demo users).  A folder generated
before with the same seed and :data:`VERSION` is left as it is, so a demo restart is quick and
its re-harvest finds nothing changed.  :func:`harvest_specs` are the built-in source's harvest
settings for it; :func:`bench_harvest` measures harvest throughput on it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

#: bump when the layout changes: a folder of another version is generated again
VERSION = 1
MARKER = ".demo-archive.json"
HEP, RADIO = "vo.hep.example", "vo.radio.example"
EPOCH = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
_RADIO_FOLDER = {
    "title": "Radio demo observations",
    "description": "LOFAR-like observations of the demo array",
    "vo": RADIO,
    "visibility": "public",
    "keywords": ["radio"],
}
#: folder-level catalogue.yaml files and sidecars, by path below the archive
METADATA: dict[str, dict[str, Any]] = {
    "alpha/archive/hep/catalogue.yaml": {
        "title": "HEP demo runs",
        "description": "Simulated collision runs of the demo experiment",
        "vo": HEP,
        "visibility": "public",
        "keywords": ["hep", "collisions"],
    },
    "alpha/archive/hep/run-2024-01/events-000.root.yaml": {
        "title": "Golden run 1, first part",
        "keywords": ["golden", "calibration"],
        "detector": "demo-barrel",
    },
    "alpha/archive/radio/catalogue.yaml": _RADIO_FOLDER,
    "beta/archive/radio/catalogue.yaml": _RADIO_FOLDER,
    "beta/archive/radio/private/catalogue.yaml": {
        "title": "Unpublished deep field",
        "visibility": "vo",
        "vo": RADIO,
        "keywords": ["deep-field", "embargoed"],
    },
    "beta/archive/radio/private/deep-000.fits.json": {
        "title": "Deep field, first pointing",
        "description": "Embargoed until publication",
        "pi": "dave",
    },
}
#: datasets held elsewhere, in the CSV list: identifier, title, VO, visibility, format, sites
LISTED = [
    ("lotss-dr2-mosaics", "LoTSS DR2 mosaics", RADIO, "public", "fits", ("beta",)),
    ("atlas-open-data-2024", "ATLAS open data 2024", HEP, "public", "root", ("alpha", "beta")),
    ("cms-nanoaod-sample", "CMS NanoAOD sample", HEP, "public", "root", ("alpha",)),
    ("pulsar-candidates-2024", "Pulsar candidates 2024", RADIO, "vo", "hdf5", ("beta",)),
]


def write_root(
    path: Path, rng: Any, entries: int = 200, title: str = "Demo collision events"
) -> None:
    """A ROOT file with an ``events`` TTree (and a histogram) through uproot."""
    import numpy as np
    import uproot

    with uproot.recreate(path) as root:
        tree = root.mktree(
            "events",
            {"run": "i4", "px": "f8", "py": "f8", "pz": "f8", "energy": "f8", "n_jets": "i4"},
            title=title,
        )
        px, py, pz = (rng.normal(0, 20, entries) for _ in range(3))
        tree.extend(
            {
                "run": np.full(entries, 1, dtype=np.int32),
                "px": px,
                "py": py,
                "pz": pz,
                "energy": np.sqrt(px**2 + py**2 + pz**2) + 1,
                "n_jets": rng.integers(0, 8, entries).astype(np.int32),
            }
        )
        root["energy_hist"] = np.histogram(rng.exponential(30, entries), bins=20)


def write_parquet(path: Path, rng: Any, start: dt.datetime, rows: int = 500) -> None:
    """A Parquet event table with a timestamp column through pyarrow."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamps = np.datetime64(start.replace(tzinfo=None), "ms") + np.arange(rows) * np.timedelta64(
        1200, "ms"
    )
    table = pa.table(
        {
            "time": pa.array(stamps, pa.timestamp("ms", tz="UTC")),
            "event": np.arange(rows, dtype=np.int64),
            "missing_et": rng.exponential(25, rows),
            "trigger": rng.choice(["mu", "e", "jet"], rows),
        }
    )
    pq.write_table(table, path, row_group_size=250)


def write_fits(path: Path, rng: Any, ra: float, dec: float, when: dt.datetime, obj: str) -> None:
    """A FITS image with a celestial WCS, telescope and observing date (astropy)."""
    from astropy.io import fits

    header = fits.Header()
    header.update(
        {
            "CTYPE1": "RA---SIN",
            "CTYPE2": "DEC--SIN",
            "CRVAL1": ra,
            "CRVAL2": dec,
            "CRPIX1": 16.5,
            "CRPIX2": 16.5,
            "CDELT1": -0.01,
            "CDELT2": 0.01,
            "CUNIT1": "deg",
            "CUNIT2": "deg",
            "TELESCOP": "LOFAR",
            "INSTRUME": "HBA",
            "OBJECT": obj,
            "DATE-OBS": when.strftime("%Y-%m-%dT%H:%M:%S"),
            "BUNIT": "JY/BEAM",
        }
    )
    data = rng.normal(0, 1e-3, (32, 32)).astype("float32")
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)


def write_netcdf(path: Path, rng: Any, when: dt.datetime, steps: int = 48) -> None:
    """A NetCDF-4 visibility table (time × baseline × channel) through h5netcdf."""
    import h5netcdf
    import numpy as np

    with h5netcdf.File(path, "w") as nc:
        nc.dimensions = {"time": steps, "baseline": 6, "channel": 4}
        nc.attrs.update(title=f"Visibilities {when:%Y-%m-%d %H:%M}", institution="Demo Array")
        time = nc.create_variable("time", ("time",), "f8")
        time.attrs["units"] = f"seconds since {when:%Y-%m-%d %H:%M:%S}"
        time[:] = np.arange(steps) * 10.0
        freq = nc.create_variable("channel", ("channel",), "f8")
        freq.attrs["units"] = "Hz"
        freq[:] = 120e6 + np.arange(4) * 2e6
        vis = nc.create_variable("amplitude", ("time", "baseline", "channel"), "f4")
        vis.attrs.update(units="Jy", long_name="visibility amplitude")
        vis[:] = rng.random((steps, 6, 4)).astype("float32")


def write_hdf5(path: Path, rng: Any, when: dt.datetime, samples: int = 256) -> None:
    """An HDF5 time series (h5py) with CF-style time units."""
    import h5py
    import numpy as np

    with h5py.File(path, "w") as h5:
        h5.attrs["title"] = f"Pulsar timing {when:%Y-%m-%d}"
        time = h5.create_dataset("time", data=np.arange(samples) * 0.5)
        time.attrs["units"] = f"seconds since {when:%Y-%m-%d %H:%M:%S}"
        power = h5.create_dataset("power", data=rng.random(samples).astype("float32"))
        power.attrs["units"] = "arbitrary"


def write_zarr(path: Path, rng: Any, when: dt.datetime) -> None:
    """A Zarr (v3) spectral cube with named dimensions and a time axis."""
    import numpy as np
    import zarr

    group = zarr.open_group(str(path), mode="w")
    group.attrs.update(title=f"Spectral cube {path.stem}", summary="HI line cube, demo")
    cube = group.create_array(
        "intensity",
        shape=(8, 16, 16),
        chunks=(4, 16, 16),
        dtype="f4",
        dimension_names=["time", "y", "x"],
    )
    cube.attrs["units"] = "Jy/beam"
    cube[:] = rng.random((8, 16, 16)).astype("float32")
    times = group.create_array("time", shape=(8,), dtype="f8", dimension_names=["time"])
    times.attrs["units"] = f"hours since {when:%Y-%m-%d %H:%M:%S}"
    times[:] = np.arange(8, dtype="f8")


def box_geometry(box: list[float]) -> dict[str, Any]:
    """A GeoJSON polygon of ``[xmin, ymin, xmax, ymax]`` (STAC keeps a bbox only with one)."""
    xmin, ymin, xmax, ymax = box
    ring = [[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax], [xmin, ymin]]
    return {"type": "Polygon", "coordinates": [ring]}


def _stac(out: Path, rng: Any) -> int:
    import pystac

    catalog = pystac.Catalog(id="demo-survey", description="Survey tiles of the demo array")
    tiles = out / "tiles"
    tiles.mkdir(parents=True, exist_ok=True)
    for index in range(8):
        ra, dec = 150.0 + index * 2.0, 30.0 + (index % 3)
        when = EPOCH + dt.timedelta(days=10 + index)
        tile = tiles / f"tile-{index:02d}.fits"
        write_fits(tile, rng, ra, dec, when, f"Survey tile {index}")
        item = pystac.Item(
            id=f"tile-{index:02d}",
            geometry=box_geometry(box := [ra - 0.16, dec - 0.16, ra + 0.16, dec + 0.16]),
            bbox=box,
            datetime=when,
            properties={
                "title": f"Survey tile {index:02d}",
                "description": "LOFAR HBA radio survey tile",
            },
        )
        item.add_asset(
            "image",
            pystac.Asset(
                href=str(tile),
                media_type="image/fits",
                title="FITS image",
                extra_fields={"file:size": tile.stat().st_size},
            ),
        )
        catalog.add_item(item)
    catalog.normalize_hrefs(str(out))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return 8


def _listing(path: Path) -> int:
    """The CSV list of datasets held elsewhere (one row per copy: two rows, two sites)."""
    columns = ["identifier", "title", "vo", "visibility", "format", "site", "path", "size"]
    rows = [
        [name, title, vo, visibility, fmt, site, f"/data/external/{name}", 1_000_000 * (n + 1)]
        for n, (name, title, vo, visibility, fmt, sites) in enumerate(LISTED)
        for site in sites
    ]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*columns, "time_start", "keywords"])
        for n, row in enumerate(rows):
            writer.writerow([*row, f"2024-0{1 + n % 9}-01T00:00:00Z", f"{row[4]};demo"])
    return len(LISTED)


def _many(folder: Path, pattern: str, count: int, write: Callable[[Path, int], Any]) -> int:
    """``count`` files ``pattern.format(index)`` in ``folder``, each written by ``write``."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        write(folder / pattern.format(index), index)
    return count


def _day(days: float, hours: float = 0) -> dt.datetime:
    return EPOCH + dt.timedelta(days=days, hours=hours)


def generate(out: Path, seed: int = 11) -> dict[str, Any]:
    """Write the archive under ``out`` (see the module docstring); returns what it holds.

    Returns
    -------
    dict
        ``files`` per site and in all, ``private`` (files private to the radio VO), ``shared``
        (files on both sites), ``stac`` items, ``listed`` datasets, ``seconds``, ``specs``.
    """
    import numpy as np

    marker = out / MARKER
    if marker.exists():
        summary = json.loads(marker.read_text())
        if summary.get("version") == VERSION and summary.get("seed") == seed:
            return {**summary, "specs": harvest_specs(out), "seconds": 0.0}
    started = time.monotonic()
    shutil.rmtree(out, ignore_errors=True)
    rng = np.random.default_rng(seed)
    alpha, beta = out / "alpha" / "archive" / "hep", out / "beta" / "archive" / "radio"
    hep = 0
    for run in range(1, 13):
        folder = alpha / f"run-2024-{run:02d}"
        hep += _many(
            folder,
            "events-{:03d}.root",
            5,
            lambda p, i, r=run: write_root(p, rng, title=f"Run {r} part {i}"),
        )
        hep += _many(
            folder,
            "summary-{:03d}.parquet",
            5,
            lambda p, i, r=run: write_parquet(p, rng, _day(r * 7, i)),
        )
    radio = _many(
        beta / "images",
        "obs-{:04d}.fits",
        60,
        lambda p, i: write_fits(p, rng, (i * 6.0) % 360, -30 + i, _day(0, i * 5), f"Field {i:02d}"),
    )
    shared = _many(
        beta / "shared",
        "calibrator-{:03d}.fits",
        20,
        lambda p, i: write_fits(p, rng, 123.4 + i, 48.2, _day(i), "3C196"),
    )
    shutil.copytree(beta / "shared", out / "alpha" / "archive" / "radio" / "shared")
    radio += _many(
        beta / "visibilities", "vis-{:03d}.nc", 20, lambda p, i: write_netcdf(p, rng, _day(i, 3))
    )
    radio += _many(
        beta / "timeseries", "tim-{:03d}.h5", 10, lambda p, i: write_hdf5(p, rng, _day(i, 3))
    )
    radio += _many(
        beta / "cubes", "cube-{:03d}.zarr", 2, lambda p, i: write_zarr(p, rng, _day(40 + i))
    )
    private = _many(
        beta / "private",
        "deep-{:03d}.fits",
        10,
        lambda p, i: write_fits(p, rng, 210.0 + i * 0.2, 54.0, _day(60 + i), "Deep field"),
    )
    for name, data in METADATA.items():
        path = out / name
        path.write_text(json.dumps(data) if path.suffix == ".json" else yaml.safe_dump(data))
    stac_items = _stac(out / "stac", rng)
    listed = _listing(out / "datasets.csv")
    for path in (out, *out.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    files = {"alpha": hep + shared, "beta": radio + shared + private}
    summary = {
        "version": VERSION,
        "seed": seed,
        "files": {**files, "total": sum(files.values())},
        "private": private,
        "shared": shared,
        "stac": stac_items,
        "listed": listed,
    }
    marker.write_text(json.dumps(summary))
    marker.chmod(0o644)
    return {**summary, "specs": harvest_specs(out), "seconds": time.monotonic() - started}


def harvest_specs(out: Path, source: str = "builtin") -> list[dict[str, Any]]:
    """The built-in source's ``harvest`` settings for the archive under ``out``."""
    return [
        {
            "path": str(out / "alpha" / "archive"),
            "site": "alpha",
            "kind": "files",
            "source": source,
        },
        {"path": str(out / "beta" / "archive"), "site": "beta", "kind": "files", "source": source},
        {
            "path": str(out / "stac" / "catalog.json"),
            "site": "beta",
            "kind": "stac",
            "source": source,
            "vo": RADIO,
        },
        {"path": str(out / "datasets.csv"), "site": "alpha", "kind": "list", "source": source},
    ]


def bench_harvest(folder: Path) -> dict[str, float]:
    """Generate the archive under ``folder`` and harvest it into a new store there.

    Returns
    -------
    dict
        ``files`` harvested, ``seconds``, ``files_per_s`` (first harvest: every file read) and
        ``rescan_files_per_s`` (second harvest: nothing changed, nothing read).
    """
    from continuum_hub.catalogue.harvest import harvest
    from continuum_hub.catalogue.index.store import CatalogueStore

    archive = generate(folder / "archive")
    store = CatalogueStore(folder / "bench-catalogue.sqlite")
    first = [harvest(store, spec) for spec in archive["specs"][:2]]
    again = [harvest(store, spec) for spec in archive["specs"][:2]]
    files = sum(r.seen for r in first)
    seconds = sum(r.seconds for r in first)
    rescan = sum(r.seconds for r in again)
    return {
        "files": files,
        "seconds": seconds,
        "files_per_s": files / seconds if seconds else 0.0,
        "rescan_files_per_s": files / rescan if rescan else 0.0,
    }
