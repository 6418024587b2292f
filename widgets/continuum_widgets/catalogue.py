"""``explore("<catalogue entry id>")``: a catalogue entry opened from its replica at this site.

:func:`open_entry` asks the hub's catalogue service for the entry, through the same client the
lab's *Catalogue* panel uses (:class:`continuum_lab.catalogue.CatalogueManager`: the server's
``JUPYTERHUB_API_TOKEN``, the service's URL from the environment, ids checked before any request
leaves), picks the available replica at the site this kernel runs on (``CONTINUUM_SITE``, set
for every server and batch job), and opens it lazily: NetCDF, HDF5 and Zarr with xarray (dask
chunks: nothing is read until a view needs it), FITS with astropy (the first image HDU of two
or more axes, memory-mapped and wrapped in dask).

Each failure is an :class:`~continuum_widgets.aggregate.ExploreError` saying what to do: an
id that is not one, an entry that does not exist (or that the user may not see: the service
answers both alike), no replica at this site (naming the sites that have one), a format that
cannot be opened, a replica whose path is not there.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask.array as da
import xarray as xr

from continuum_lab.catalogue import CatalogueError, CatalogueManager
from continuum_lab.catalogue import entry_id as checked
from continuum_widgets.aggregate import ExploreError

#: format names (lowercase) → the opener's name; other spellings as the catalogue's harvesters
FORMATS = {
    "netcdf": "netcdf",
    "netcdf4": "netcdf",
    "nc": "netcdf",
    "hdf5": "hdf5",
    "h5": "hdf5",
    "hdf": "hdf5",
    "zarr": "zarr",
    "fits": "fits",
    "fit": "fits",
}
#: file name suffixes → format, for an entry that does not name its format
SUFFIXES = {".nc": "netcdf", ".h5": "hdf5", ".hdf5": "hdf5", ".zarr": "zarr", ".fits": "fits"}


def fetch_entry(entry_id: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The catalogue's entry ``entry_id`` (its JSON), asked through the lab's catalogue client.

    Runs the client's coroutine on a loop of its own in a helper thread, so it also works in a
    kernel whose event loop is already running. Raises :class:`ExploreError`.
    """
    try:
        checked(entry_id)
    except CatalogueError:
        raise ExploreError(
            f"{entry_id!r:.80} is not a catalogue entry id (source:identifier, as the Catalogue "
            "panel shows them)"
        ) from None
    manager = CatalogueManager(environ=dict(os.environ if environ is None else environ))
    with ThreadPoolExecutor(max_workers=1) as thread:
        try:
            return thread.submit(asyncio.run, manager.entry(entry_id)).result()
        except CatalogueError as error:
            if error.status == 400:  # the service's own check of the id
                raise ExploreError(
                    f"{entry_id!r:.80} is not a catalogue entry id: {error.message}"
                ) from None
            if error.status == 404:
                raise ExploreError(
                    f"the catalogue has no entry {entry_id!r} (or it is not visible to you)"
                ) from None
            raise ExploreError(f"the catalogue could not be asked: {error.message}") from None


def replica_here(entry: Mapping[str, Any], site: str) -> dict[str, Any]:
    """The entry's available replica at ``site``; :class:`ExploreError` naming the sites that
    have one when this one has none."""
    replicas = [r for r in entry.get("replicas") or [] if isinstance(r, dict)]
    for replica in replicas:
        if replica.get("site") == site and replica.get("state", "available") == "available":
            return replica
    elsewhere = sorted({str(r.get("site")) for r in replicas if r.get("site")} - {site})
    where = f"it has replicas at {', '.join(elsewhere)}" if elsewhere else "it has no replica"
    raise ExploreError(
        f"no replica of {entry.get('id')} at {site}, where this kernel runs: {where}. Ask for "
        f"a copy here with the Catalogue panel's Make available, or explore it from a server "
        f"at {elsewhere[0] if elsewhere else 'a site that has it'}"
    )


def entry_format(entry: Mapping[str, Any], path: str) -> str:
    """The opener for an entry: its format, else its path's suffix; ExploreError otherwise."""
    named = str(entry.get("format") or "").lower()
    found = FORMATS.get(named) or (None if named else SUFFIXES.get(Path(path).suffix.lower()))
    if found is None:
        raise ExploreError(
            f"explore cannot open {entry.get('id')}: its format is {named or 'not named'!s}; "
            "it opens NetCDF, HDF5 and Zarr (xarray) and FITS images (astropy)"
        )
    return found


def open_fits(path: str) -> xr.Dataset:
    """The first image HDU of ``path`` with two or more axes, lazily (memory-mapped, dask)."""
    from astropy.io import fits

    hdus = fits.open(path, memmap=True, lazy_load_hdus=True)
    for index, hdu in enumerate(hdus):
        if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2:
            # FITS axes run fastest first: NAXIS1 is the last numpy axis (x)
            dims = [f"axis{n}" for n in range(hdu.header["NAXIS"], 0, -1)]
            data = da.from_array(hdu.data, chunks="auto")
            name = hdu.name or f"hdu{index}"
            return xr.Dataset({name: (dims, data)}, attrs={"source": path})
    hdus.close()
    raise ExploreError(f"{path} has no image HDU with two or more axes to explore")


def open_replica(path: str, kind: str) -> xr.Dataset:
    """``path`` opened lazily as ``kind`` (an opener of :data:`FORMATS`)."""
    if not Path(path).exists():
        raise ExploreError(f"the replica's path {path} is not there on this machine")
    try:
        if kind == "zarr":
            return xr.open_zarr(path)
        if kind == "fits":
            return open_fits(path)
        # NetCDF-4 and HDF5 through h5netcdf; NetCDF-3 is read by xarray's default engine
        engine = "h5netcdf" if kind == "hdf5" or _is_hdf5(path) else None
        extra = {"phony_dims": "sort"} if engine else {}
        return xr.open_dataset(path, engine=engine, chunks={}, **extra)
    except ExploreError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ExploreError(f"{path} could not be opened as {kind}: {error}") from None


def _is_hdf5(path: str) -> bool:
    with open(path, "rb") as file:
        return file.read(8) == b"\x89HDF\r\n\x1a\n"


def open_entry(
    entry_id: str, *, site: str | None = None, environ: Mapping[str, str] | None = None
) -> xr.Dataset:
    """The catalogue entry ``entry_id`` opened from its replica at ``site`` (default: the
    kernel's ``CONTINUUM_SITE``). Raises :class:`ExploreError`."""
    env = os.environ if environ is None else environ
    site = site or env.get("CONTINUUM_SITE", "")
    if not site:
        raise ExploreError(
            "this kernel does not know its site (no CONTINUUM_SITE): pass explore(..., site=)"
        )
    entry = fetch_entry(entry_id, env)
    replica = replica_here(entry, site)
    path = str(replica.get("path") or "")
    return open_replica(path, entry_format(entry, path))
