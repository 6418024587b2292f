"""Aggregation of a large 2-D slice of an xarray variable onto a screen's pixel grid, with dask.

:func:`aggregate` bins every finite value of a (possibly lazy, dask-backed) 2-D
:class:`xarray.DataArray` into ``height × width`` pixels covering a view extent and returns, per
pixel, the number of values and their sum. The binning runs block by block wherever dask
computes — the workers of the current :class:`distributed.Client` when there is one, local
threads otherwise — with **cupy** on a worker that sees a GPU and **numpy** elsewhere
(:func:`continuum_widgets.analysis.array_module`). Only the ``2 × height × width`` result travels
back, never the data.

Counts are integers and therefore identical on every device and for every chunking; sums are
float64 and agree within floating-point reordering (a relative ``1e-12`` in the tests).

Before anything is computed the view is cropped to the chunks it overlaps (coordinates must be
monotonic), and :func:`check_local_bound` refuses to compute more than a configured number of
bytes in this process when no cluster is connected: a 1-TB lazy array is described, never loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from continuum_widgets.analysis import array_module

#: default bound on the bytes one view may touch when computed in this process (no cluster)
DEFAULT_LOCAL_LIMIT = 2 * 1024**3
#: environment variable overriding :data:`DEFAULT_LOCAL_LIMIT` (bytes)
LOCAL_LIMIT_ENV = "CONTINUUM_EXPLORE_LOCAL_LIMIT"


class ExploreError(ValueError):
    """Input the explorer cannot show; the message is meant for the user, as is."""


@dataclass(frozen=True)
class Aggregate:
    """Per-pixel counts and sums of one view (rows: y, columns: x)."""

    counts: np.ndarray
    sums: np.ndarray
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    nbytes: int

    @property
    def mean(self) -> np.ndarray:
        """Per-pixel mean; NaN where a pixel received no finite value."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.nan)


def default_local_limit() -> int:
    """Bytes one view may touch without a cluster: ``$CONTINUUM_EXPLORE_LOCAL_LIMIT`` or 2 GiB."""
    value = os.environ.get(LOCAL_LIMIT_ENV, "").strip()
    return int(value) if value else DEFAULT_LOCAL_LIMIT


def human_bytes(count: float) -> str:
    """``1.5 GB``-style size (decimal units, as dask prints them)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(count) < 1000 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def check_local_bound(array: xr.DataArray, limit: int, have_cluster: bool) -> None:
    """Refuse to compute ``array`` in this process when it is lazy and larger than ``limit``."""
    if have_cluster or not isinstance(array.data, da.Array) or array.nbytes <= limit:
        return
    raise ExploreError(
        f"this view touches {human_bytes(array.nbytes)} of lazy data and no Dask cluster is "
        f"connected; computing it here is refused above {human_bytes(limit)} to protect the "
        "server's memory. Start a cluster (continuum_widgets.ClusterLauncher) and create its "
        "client, zoom into a smaller region, or raise local_limit."
    )


def monotonic_direction(coord: np.ndarray, dim: str) -> int:
    """``+1`` for an increasing, ``-1`` for a decreasing coordinate; :class:`ExploreError` else."""
    if coord.size < 2:
        return 1
    steps = np.diff(coord.astype(np.float64))
    if np.all(steps > 0):
        return 1
    if np.all(steps < 0):
        return -1
    raise ExploreError(
        f"the coordinate {dim!r} is not monotonic, so a zoomed view cannot be located in it: "
        f"sort it first (obj.sortby({dim!r}))"
    )


def _index_window(coord: np.ndarray, low: float, high: float, direction: int) -> slice:
    """The index range of ``coord`` whose values fall in ``[low, high]`` (one margin each side)."""
    if direction < 0:
        coord = coord[::-1]
    start = max(int(np.searchsorted(coord, low, side="left")) - 1, 0)
    stop = min(int(np.searchsorted(coord, high, side="right")) + 1, coord.size)
    if direction < 0:
        start, stop = coord.size - stop, coord.size - start
    return slice(start, stop)


def crop(
    array: xr.DataArray, x_range: tuple[float, float], y_range: tuple[float, float]
) -> xr.DataArray:
    """``array`` (dims ``(y, x)``) restricted to the rows and columns a view extent can touch."""
    y_dim, x_dim = array.dims
    windows = {}
    for dim, (low, high) in ((x_dim, x_range), (y_dim, y_range)):
        coord = np.asarray(array[dim].values, dtype=np.float64)
        windows[dim] = _index_window(coord, low, high, monotonic_direction(coord, str(dim)))
    return array.isel(windows)


def _pixel_index(coord: Any, low: float, high: float, pixels: int, xp: Any) -> Any:
    """Pixel column of each coordinate value; ``-1`` outside ``[low, high)`` (``high`` included)."""
    scale = pixels / (high - low) if high > low else 0.0
    index = xp.floor((coord - low) * scale).astype(xp.int64)
    index = xp.where(coord == high, pixels - 1, index)  # the right/top edge belongs to the view
    return xp.where((index >= 0) & (index < pixels), index, -1)


def _block_aggregate(
    block: Any,
    y_coord: np.ndarray,
    x_coord: np.ndarray,
    view: tuple[float, float, float, float],
    shape: tuple[int, int],
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray:
    """Counts and sums of one block on this worker's device; a host ``(1, 1, 2, h, w)`` array."""
    xp = array_module()
    height, width = shape
    (y0, y1), (x0, x1) = block_info[0]["array-location"]
    values = xp.asarray(block).astype(xp.float64)
    rows = _pixel_index(xp.asarray(y_coord[y0:y1]), view[2], view[3], height, xp)
    cols = _pixel_index(xp.asarray(x_coord[x0:x1]), view[0], view[1], width, xp)
    pixel = rows[:, None] * width + cols[None, :]
    keep = (rows[:, None] >= 0) & (cols[None, :] >= 0) & xp.isfinite(values)
    flat, kept = pixel[keep], values[keep]
    counts = xp.bincount(flat, minlength=height * width).astype(xp.float64)
    sums = xp.bincount(flat, weights=kept, minlength=height * width)
    out = xp.stack([counts, sums]).reshape(1, 1, 2, height, width)
    return out.get() if hasattr(out, "get") else np.asarray(out)


def aggregate_lazy(
    array: xr.DataArray,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    width: int,
    height: int,
    local_limit: int | None = None,
) -> tuple[da.Array, int]:
    """The dask graph of :func:`aggregate` (not computed) and the bytes it reads.

    The image has ``height × width`` pixels, fewer along an axis with fewer values in the extent.

    With ``local_limit`` (bytes; pass it when no cluster is connected) a lazy view larger than
    that is refused (:func:`check_local_bound`) before any graph is built.
    """
    blocks, nbytes = aggregate_blocks(array, (x_range, y_range), (width, height), local_limit)
    return blocks.sum(axis=(0, 1)), nbytes


def aggregate_blocks(
    array: xr.DataArray,
    extent: tuple[tuple[float, float], tuple[float, float]],
    size: tuple[int, int],
    local_limit: int | None = None,
) -> tuple[da.Array, int]:
    """Like :func:`aggregate_lazy` (``extent``: its ``(x_range, y_range)``, ``size``: its
    ``(width, height)``), before the sum: one ``(2, h, w)`` aggregate per block, dims
    ``(by, bx, 2, h, w)`` (what :mod:`continuum_widgets.progress` counts as progress)."""
    (x_range, y_range), (width, height) = extent, size
    if width < 1 or height < 1:
        raise ExploreError("the image needs at least one pixel each way")
    if array.ndim != 2:
        raise ExploreError(f"a view is a 2-D slice, this one has dims {array.dims}")
    view = crop(array, x_range, y_range)
    if local_limit is not None:
        check_local_bound(view, local_limit, have_cluster=False)
    data = view.data if isinstance(view.data, da.Array) else da.from_array(view.data)
    if np.issubdtype(data.dtype, np.complexfloating) or not np.issubdtype(data.dtype, np.number):
        raise ExploreError(f"values of type {data.dtype} cannot be shaded: choose a numeric one")
    y_dim, x_dim = view.dims
    ys = np.asarray(view[y_dim].values, dtype=np.float64)
    xs = np.asarray(view[x_dim].values, dtype=np.float64)
    # zoomed in beyond the data's resolution, more pixels than values would leave empty stripes:
    # never more pixels along an axis than values inside the extent
    width = max(1, min(width, int(((xs >= x_range[0]) & (xs <= x_range[1])).sum())))
    height = max(1, min(height, int(((ys >= y_range[0]) & (ys <= y_range[1])).sum())))
    extent = (float(x_range[0]), float(x_range[1]), float(y_range[0]), float(y_range[1]))
    blocks = data.map_blocks(
        _block_aggregate,
        ys,
        xs,
        extent,
        (height, width),
        dtype=np.float64,
        new_axis=[2, 3, 4],
        chunks=((1,) * data.numblocks[0], (1,) * data.numblocks[1], (2,), (height,), (width,)),
        meta=np.empty((0, 0, 0, 0, 0), np.float64),
    )
    return blocks, int(view.nbytes)


def aggregate(
    array: xr.DataArray,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    width: int = 600,
    height: int = 400,
    **compute_kwargs: Any,
) -> Aggregate:
    """Counts and sums of the finite values of ``array`` per pixel of a view, computed by dask.

    Parameters
    ----------
    array
        A 2-D variable, dims ``(y, x)``, with monotonic numeric coordinates on both.
    x_range, y_range
        The view's extent in coordinate units; both ends are inside the view.
    width, height
        The image's size in pixels.
    **compute_kwargs
        Passed to ``dask.compute`` (e.g. ``scheduler="threads"``); by default the current
        distributed client computes when there is one.

    Returns
    -------
    Aggregate
        ``counts`` (exact integers) and ``sums`` of shape ``(height, width)``, or smaller
        along an axis with fewer values than pixels in the extent.
    """
    graph, nbytes = aggregate_lazy(array, x_range, y_range, width, height)
    result = graph.compute(**compute_kwargs)
    return Aggregate(
        counts=np.rint(result[0]).astype(np.int64),
        sums=result[1],
        x_range=(float(x_range[0]), float(x_range[1])),
        y_range=(float(y_range[0]), float(y_range[1])),
        nbytes=nbytes,
    )


def extent_of(coord: np.ndarray) -> tuple[float, float]:
    """The smallest and largest value of a coordinate, as floats."""
    values = np.asarray(coord, dtype=np.float64)
    return float(values.min()), float(values.max())


def pixel_centres(extent: tuple[float, float], pixels: int) -> np.ndarray:
    """The coordinates of the centres of ``pixels`` equal pixels spanning ``extent``."""
    step = (extent[1] - extent[0]) / pixels
    return extent[0] + step * (np.arange(pixels) + 0.5)
