"""``explore("<catalogue entry id>")``: the entry asked of the real catalogue service, its replica
at the kernel's site opened (NetCDF, HDF5, Zarr with xarray; FITS with astropy), clear errors.

The catalogue service's real application runs on 127.0.0.1 in a thread of its own (the widget
asks it synchronously, as a notebook cell does), with HubAuth and the hub's users API at the
boundary (``test_catalogue_api``'s) and the federation's ``StaticSource`` listing files written
here in each format.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import panel as pn
import pytest
import xarray as xr
from astropy.io import fits
from test_catalogue_api import FakeHub, FakeHubAuth
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from traitlets.config import Config

from continuum_hub.catalogue.app import make_application
from continuum_widgets import explore
from continuum_widgets.aggregate import ExploreError
from continuum_widgets.catalogue import open_entry
from continuum_widgets.explorer import Explorer
from fixtures.catalogue import RADIO, STATIC
from fixtures.workflow_runs import DEMO

pytestmark = [pytest.mark.explore, pytest.mark.catalogue]

CUBE = xr.Dataset(
    {"flux": (("band", "y", "x"), np.arange(2 * 30 * 40, dtype=np.float64).reshape(2, 30, 40))},
    coords={"band": [1.4, 3.0], "y": np.arange(30.0), "x": np.arange(40.0)},
)


def write_files(folder: Path) -> dict[str, Path]:
    """The cube as NetCDF, Zarr and plain HDF5, an image as FITS; a ROOT file's name."""
    paths = {
        "nc": folder / "cube.nc",
        "zarr": folder / "cube.zarr",
        "h5": folder / "cube.h5",
        "fits": folder / "sky.fits",
    }
    CUBE.to_netcdf(paths["nc"], engine="h5netcdf")
    CUBE.to_zarr(paths["zarr"])
    with h5py.File(paths["h5"], "w") as file:
        file["flux"] = CUBE.flux.values
    image = fits.PrimaryHDU(np.ones((3, 50, 60), dtype=np.float32))
    fits.HDUList([image]).writeto(paths["fits"])
    return paths


def entries(paths: dict[str, Path]) -> list[dict[str, Any]]:
    def entry(identifier: str, fmt: str, *replicas: tuple[str, str], **more: Any) -> dict:
        return {
            "identifier": identifier,
            "kind": "dataset",
            "title": identifier,
            "format": fmt,
            "replicas": [{"site": s, "location": f"{s}-disk", "path": p} for s, p in replicas],
            **more,
        }

    return [
        entry("cube/netcdf", "netcdf", ("beta", "/elsewhere.nc"), ("alpha", str(paths["nc"]))),
        entry("cube/zarr", "zarr", ("alpha", str(paths["zarr"]))),
        entry("cube/hdf5", "hdf5", ("alpha", str(paths["h5"]))),
        entry("sky/fits", "fits", ("alpha", str(paths["fits"]))),
        entry("cube/unnamed", "", ("alpha", str(paths["nc"]))),
        entry("cube/beta-only", "netcdf", ("beta", "/data/cube.nc"), ("gamma", "/d/cube.nc")),
        entry("hep/run", "root", ("alpha", "/data/run.root")),
        entry("cube/gone", "netcdf", ("alpha", str(paths["nc"].with_name("gone.nc")))),
        entry("radio/private", "netcdf", ("alpha", str(paths["nc"])), vo=RADIO, visibility="vo"),
    ]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service's URL (``…/services/catalogue/``), served from a thread with its own loop."""
    folder = tmp_path_factory.mktemp("explore-catalogue")
    sources = [{"name": "files", "kind": STATIC, "entries": entries(write_files(folder))}]
    settings = {"state_dir": str(folder / "state"), "registry_path": str(DEMO), "sources": sources}
    loop = asyncio.new_event_loop()
    started: list[tuple[HTTPServer, int]] = []

    async def serve() -> None:
        app = make_application(
            Config({"CatalogueApp": settings}), hub_auth=FakeHubAuth(), hub=FakeHub()
        )
        sock, port = bind_unused_port()
        server = HTTPServer(app)
        server.add_sockets([sock])
        started.append((server, port))

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=30)
    server, port = started[0]
    try:
        yield f"http://127.0.0.1:{port}/services/catalogue/"
    finally:
        loop.call_soon_threadsafe(server.stop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


@pytest.fixture
def kernel(catalogue: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """alice's kernel at alpha: the environment a spawned server gives it."""
    env = {
        "CONTINUUM_CATALOGUE_URL": catalogue,
        "JUPYTERHUB_API_TOKEN": "bob",  # bob: not in the radio VO
        "CONTINUUM_SITE": "alpha",
        "CONTINUUM_SLURM_CONF_ALPHA": "/a",
        "CONTINUUM_SLURM_CONF_BETA": "/b",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.mark.parametrize("entry", ["files:cube/netcdf", "files:cube/zarr", "files:cube/unnamed"])
def test_netcdf_and_zarr_open_lazily_from_the_replica_here(entry: str, kernel: dict) -> None:
    opened = open_entry(entry)
    assert opened.flux.chunks is not None  # lazy: dask-backed, nothing read yet
    xr.testing.assert_equal(opened.compute(), CUBE)
    explorer = Explorer(opened, width=40, height=30)
    explorer.panel().get_root()
    assert explorer.last is not None and explorer.last.counts.sum() == 30 * 40


def test_plain_hdf5_and_fits_open_too(kernel: dict) -> None:
    h5 = open_entry("files:cube/hdf5")
    assert h5.flux.shape == (2, 30, 40) and h5.flux.chunks is not None
    np.testing.assert_array_equal(h5.flux.values, CUBE.flux.values)
    sky = open_entry("files:sky/fits")
    assert sky.PRIMARY.dims == ("axis3", "axis2", "axis1") and sky.PRIMARY.shape == (3, 50, 60)
    explorer = Explorer(sky, width=60, height=50)
    explorer.panel().get_root()
    assert explorer.last.counts.sum() == 50 * 60 and list(explorer.selectors) == ["axis3"]


def test_explore_takes_an_entry_id(kernel: dict) -> None:
    app = explore("files:cube/zarr", width=40, height=30)
    assert isinstance(app, pn.Column)
    refused = explore("files:cube/beta-only")
    assert isinstance(refused, pn.pane.Alert)
    assert "no replica of files:cube/beta-only at alpha" in refused.object
    # another site given explicitly: that site's replica is looked for
    assert "at delta, where" in explore("files:cube/beta-only", site="delta").object
    assert "/d/cube.nc is not there" in explore("files:cube/beta-only", site="gamma").object


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("nothing-here", "is not a catalogue entry id (source:identifier"),
        ("files:../../etc/passwd", "is not a catalogue entry id: "),
        ("files:cube/none", "the catalogue has no entry 'files:cube/none' (or it is not visible"),
        ("files:radio/private", "the catalogue has no entry 'files:radio/private' (or it is"),
        ("other:cube/zarr", "the catalogue has no entry 'other:cube/zarr'"),
        ("files:cube/beta-only", "it has replicas at beta, gamma. Ask for a copy here with"),
        ("files:hep/run", "its format is root; it opens NetCDF, HDF5 and Zarr (xarray) and FITS"),
        ("files:cube/gone", "gone.nc is not there on this machine"),
    ],
)
def test_clear_errors(entry: str, message: str, kernel: dict) -> None:
    with pytest.raises(ExploreError) as raised:
        open_entry(entry)
    assert message in str(raised.value)


def test_no_site_or_no_catalogue_is_said(kernel: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTINUUM_SITE")
    with pytest.raises(ExploreError, match="does not know its site"):
        open_entry("files:cube/zarr")
    monkeypatch.delenv("CONTINUUM_CATALOGUE_URL")
    monkeypatch.delenv("JUPYTERHUB_API_URL", raising=False)
    with pytest.raises(ExploreError, match="No catalogue service is configured"):
        open_entry("files:cube/zarr", site="alpha")
