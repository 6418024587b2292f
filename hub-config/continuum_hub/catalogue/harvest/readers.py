"""What a data file says about itself, read cheaply: headers and metadata, never the data.

One reader per format, chosen by :func:`reader_for` from the file name (and, for
``.nc``/``.h5``, the first bytes).  Each returns a :class:`~.describe.Description`: variables
(name, dimensions, shape, type, units), dimensions, the time range and the sky position or
bounding box where the file carries them, and a few header values.  What is read:

* NetCDF-4 and HDF5 — h5netcdf / h5py: the variables' and groups' attributes; the time range
  from CF ``units`` ("seconds since …") on the first and last value of a ``time`` variable, or
  ACDD ``time_coverage_start/end``; a latitude/longitude box from ACDD ``geospatial_*`` or
  one-dimensional ``lat``/``lon`` coordinates of at most :data:`MAX_COORD_VALUES` values;
* Zarr (v2 and v3 stores) — the group's and arrays' metadata, the same time rule;
* FITS — astropy's headers of the first HDUs (``TELESCOP``, ``INSTRUME``, ``OBJECT``,
  ``DATE-OBS``, ``BUNIT``, ``NAXISn``), the sky position (``RA``/``DEC`` or the WCS reference)
  and the image footprint from the WCS; table HDUs' columns;
* Parquet — pyarrow's schema, row count, row groups, and the time range from the row-group
  statistics of the first timestamp column;
* ROOT — uproot's keys with their classes, trees' (and RNTuples') entries and branches.

A reader raises whatever its library raises on a damaged file; the harvester records that as a
harvest problem and goes on.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .describe import Description, as_text, cf_times, parse_time, variable

#: at most this many variables, keys or branches are described per file
MAX_VARIABLES = 200
#: a coordinate read to find a bounding box has at most this many values (else: no box)
MAX_COORD_VALUES = 100_000
#: FITS headers read per file
MAX_HDUS = 8
#: FITS header keywords kept in an entry's metadata
FITS_KEYWORDS = ("TELESCOP", "INSTRUME", "OBJECT", "DATE-OBS", "DATE-END", "BUNIT", "OBSERVER")
#: NetCDF/HDF5/Zarr attributes kept in an entry's metadata (title and summary become fields)
KEPT_ATTRIBUTES = ("institution", "source", "project", "instrument", "references")

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _attributes(attrs: Mapping[str, Any]) -> dict[str, str]:
    return {key: as_text(attrs[key])[:2000] for key in KEPT_ATTRIBUTES if key in attrs}


def _finish_arrays(desc: Description, attrs: Mapping[str, Any], arrays: Mapping[str, Any]) -> None:
    """Title, time range and lat/lon box of a NetCDF/HDF5/Zarr dataset (arrays by name)."""
    desc.title = as_text(attrs.get("title", ""))[:300]
    desc.description = as_text(attrs.get("summary", attrs.get("comment", "")))[:2000]
    desc.details.update(_attributes(attrs))
    desc.time_start = parse_time(attrs.get("time_coverage_start"))
    desc.time_end = parse_time(attrs.get("time_coverage_end"))
    time = arrays.get("time")
    if desc.time_start is None and time is not None and len(time.shape) == 1 and time.shape[0]:
        desc.time_start, desc.time_end = cf_times(
            as_text(time.attrs.get("units", "")), time[0], time[time.shape[0] - 1]
        )
    try:
        corners = ("lon_min", "lat_min", "lon_max", "lat_max")
        desc.bbox = [float(attrs[f"geospatial_{corner}"]) for corner in corners]
        return
    except (KeyError, TypeError, ValueError):
        pass  # no ACDD box (or not numbers): try the coordinates
    lon = next((arrays[n] for n in ("lon", "longitude") if n in arrays), None)
    lat = next((arrays[n] for n in ("lat", "latitude") if n in arrays), None)
    if lon is None or lat is None or max(len(lon.shape), len(lat.shape)) != 1:
        return
    if max(lon.shape[0], lat.shape[0]) > MAX_COORD_VALUES:
        return
    import numpy as np

    lons, lats = np.asarray(lon[:], dtype=float), np.asarray(lat[:], dtype=float)
    lons, lats = lons[np.isfinite(lons)], lats[np.isfinite(lats)]  # fill values are NaN
    if lons.size and lats.size:
        desc.bbox = [float(lons.min()), float(lats.min()), float(lons.max()), float(lats.max())]


def read_netcdf(path: Path) -> Description:
    """A NetCDF-4 file through h5netcdf: dimensions, variables, global attributes."""
    import h5netcdf

    desc = Description(format="netcdf")
    with h5netcdf.File(path, "r") as nc:
        desc.dimensions = {name: int(dim.size) for name, dim in nc.dimensions.items()}
        arrays = {}
        for name, var in list(nc.variables.items())[:MAX_VARIABLES]:
            desc.variables.append(variable(name, var.dimensions, var.shape, var.dtype, var.attrs))
            arrays[name] = var
        _finish_arrays(desc, nc.attrs, arrays)
    return desc


def read_hdf5(path: Path) -> Description:
    """An HDF5 file through h5py: its datasets (up to :data:`MAX_VARIABLES`) and root attributes."""
    import h5py

    desc = Description(format="hdf5")
    with h5py.File(path, "r") as h5:
        arrays: dict[str, Any] = {}

        def visit(name: str, obj: Any) -> bool | None:
            if isinstance(obj, h5py.Dataset):
                dims = [f"dim_{i}" for i in range(len(obj.shape))]
                desc.variables.append(variable(name, dims, obj.shape, obj.dtype, obj.attrs))
                arrays[name.rsplit("/", 1)[-1]] = obj
            # a true value stops the visit
            return True if len(desc.variables) >= MAX_VARIABLES else None

        h5.visititems(visit)
        _finish_arrays(desc, h5.attrs, arrays)
    return desc


def read_netcdf_or_hdf5(path: Path) -> Description:
    """``.nc``/``.nc4`` files through h5netcdf (NetCDF-4 is HDF5 underneath), ``.h5``/``.hdf5``/
    ``.he5`` through h5py; NetCDF-3 (classic) files are refused with a clear reason."""
    with path.open("rb") as handle:
        magic = handle.read(8)
    if magic[:3] == b"CDF":
        raise ValueError("NetCDF-3 (classic) files are not described; convert them to NetCDF-4")
    if magic != _HDF5_MAGIC:
        raise ValueError("not an HDF5/NetCDF-4 file")
    if path.suffix.lower() in (".nc", ".nc4"):
        return read_netcdf(path)
    return read_hdf5(path)


def read_zarr(path: Path) -> Description:
    """A Zarr store (a folder): group attributes and arrays' metadata (v2 and v3)."""
    import zarr

    desc = Description(format="zarr")
    group = zarr.open_group(str(path), mode="r")
    arrays = {}
    for name, array in list(group.arrays())[:MAX_VARIABLES]:
        attrs = array.attrs.asdict()
        dims = getattr(array.metadata, "dimension_names", None) or attrs.get("_ARRAY_DIMENSIONS")
        dims = list(dims or [f"dim_{i}" for i in range(len(array.shape))])
        desc.variables.append(variable(name, dims, array.shape, array.dtype, attrs))
        for dim, size in zip(dims, array.shape, strict=False):
            desc.dimensions.setdefault(str(dim), int(size))
        arrays[name] = _ZarrArray(array, attrs)
    _finish_arrays(desc, group.attrs.asdict(), arrays)
    return desc


class _ZarrArray:
    """A Zarr array with its attributes as a plain dict (the shape :func:`_finish_arrays` reads)."""

    def __init__(self, array: Any, attrs: dict[str, Any]) -> None:
        self.array, self.attrs, self.shape = array, attrs, array.shape

    def __getitem__(self, key: Any) -> Any:
        return self.array[key]


def read_fits(path: Path) -> Description:
    """A FITS file through astropy: headers of the first HDUs, pointing, WCS footprint."""
    from astropy.io import fits
    from astropy.wcs import WCS

    desc = Description(format="fits")
    hdus = []
    # headers only, read, never memory-mapped: a file rewritten in place by whoever owns it
    # while it is mapped would kill the harvester with SIGBUS
    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        for index, hdu in enumerate(hdul):
            if index >= MAX_HDUS:
                break
            header = hdu.header
            shape = [
                int(header.get(f"NAXIS{i}", 0)) for i in range(1, int(header.get("NAXIS", 0)) + 1)
            ]
            hdus.append({"name": hdu.name, "kind": type(hdu).__name__, "shape": shape})
            for key in FITS_KEYWORDS:
                if key in header and key not in desc.details:
                    desc.details[key] = as_text(header[key])[:200]
            if shape and desc.bbox is None and len(shape) >= 2 and "CTYPE1" in header:
                with warnings.catch_warnings():
                    # astropy warns about every non-standard header it fixes up: not a problem
                    warnings.simplefilter("ignore")
                    try:
                        _fits_sky(desc, WCS(header, naxis=2))
                    except Exception as exc:  # a bad WCS costs the footprint, not the file
                        desc.details["wcs_problem"] = str(exc)[:200]
            if header.get("XTENSION") in ("BINTABLE", "TABLE"):
                _fits_columns(desc, hdu.name or f"HDU{index}", header)
            elif shape:
                dims = [f"axis{i}" for i in range(len(shape), 0, -1)]
                desc.variables.append(
                    variable(
                        hdu.name or "PRIMARY",
                        dims,
                        reversed(shape),
                        "image",
                        {"units": header.get("BUNIT", "")},
                    )
                )
            if desc.position is None and "RA" in header and "DEC" in header:
                try:
                    desc.position = {"ra": float(header["RA"]), "dec": float(header["DEC"])}
                except (TypeError, ValueError):
                    pass
    desc.details["hdus"] = hdus
    desc.title = str(desc.details.get("OBJECT", ""))
    desc.time_start = parse_time(desc.details.get("DATE-OBS"))
    desc.time_end = parse_time(desc.details.get("DATE-END")) or desc.time_start
    return desc


def _fits_columns(desc: Description, name: str, header: Any) -> None:
    """A FITS table's columns (``TTYPEn``, ``TFORMn``, ``TUNITn``) as variables."""
    rows = int(header.get("NAXIS2", 0))
    for number in range(1, min(int(header.get("TFIELDS", 0)), MAX_VARIABLES) + 1):
        column = {"units": header.get(f"TUNIT{number}", "")}
        desc.variables.append(
            variable(
                f"{name}/{header.get(f'TTYPE{number}', number)}",
                ["row"],
                [rows],
                header.get(f"TFORM{number}", ""),
                column,
            )
        )


def _fits_sky(desc: Description, wcs: Any) -> None:
    if not wcs.has_celestial:
        return
    ra, dec = (float(v) for v in wcs.wcs.crval[:2])
    desc.position = desc.position or {"ra": ra, "dec": dec}
    corners = wcs.calc_footprint()
    desc.bbox = [
        float(corners[:, 0].min()),
        float(corners[:, 1].min()),
        float(corners[:, 0].max()),
        float(corners[:, 1].max()),
    ]


def read_parquet(path: Path) -> Description:
    """A Parquet file through pyarrow: schema, rows, row groups, time range from statistics."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    desc = Description(format="parquet")
    parquet = pq.ParquetFile(path)
    meta = parquet.metadata
    schema = parquet.schema_arrow
    for column in list(schema)[:MAX_VARIABLES]:
        desc.variables.append({"name": column.name, "dims": ["row"], "dtype": str(column.type)})
    desc.dimensions = {"row": int(meta.num_rows)}
    desc.details.update(rows=int(meta.num_rows), row_groups=int(meta.num_row_groups))
    stamps = [i for i, column in enumerate(schema) if pa.types.is_timestamp(column.type)]
    if stamps and meta.num_row_groups:
        lows, highs = [], []
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(stamps[0]).statistics
            if stats is None or not stats.has_min_max:
                break
            lows.append(stats.min)
            highs.append(stats.max)
        else:
            desc.time_start, desc.time_end = parse_time(min(lows)), parse_time(max(highs))
    return desc


def read_root(path: Path) -> Description:
    """A ROOT file through uproot: keys and classes; trees' entries and branch types."""
    import uproot

    desc = Description(format="root")
    objects = []
    with uproot.open(path) as root:
        for key, classname in list(root.classnames().items())[:MAX_VARIABLES]:
            item: dict[str, Any] = {"key": key, "class": classname}
            if classname in ("TTree", "ROOT::RNTuple", "ROOT::Experimental::RNTuple"):
                tree = root[key]
                item["entries"] = int(tree.num_entries)
                types = dict(tree.itertypenames()) if hasattr(tree, "itertypenames") else {}
                for name in list(tree.keys())[:MAX_VARIABLES]:
                    desc.variables.append(
                        {
                            "name": f"{key.split(';')[0]}/{name}",
                            "dims": ["entry"],
                            "dtype": str(types.get(name, "")),
                        }
                    )
                title = getattr(tree, "title", "")
                if title and not desc.title:
                    desc.title = str(title)
            objects.append(item)
    desc.details["objects"] = objects
    return desc


#: file name suffix → reader (Zarr stores are folders named ``*.zarr``)
READERS: dict[str, Callable[[Path], Description]] = {
    ".nc": read_netcdf_or_hdf5,
    ".nc4": read_netcdf_or_hdf5,
    ".h5": read_netcdf_or_hdf5,
    ".hdf5": read_netcdf_or_hdf5,
    ".he5": read_netcdf_or_hdf5,
    ".zarr": read_zarr,
    ".fits": read_fits,
    ".fit": read_fits,
    ".fts": read_fits,
    ".parquet": read_parquet,
    ".pq": read_parquet,
    ".root": read_root,
}


def reader_for(path: Path) -> Callable[[Path], Description] | None:
    """The reader of ``path`` by its suffix, ``None`` when it is not a data file we describe."""
    return READERS.get(path.suffix.lower())
