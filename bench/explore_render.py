"""explore_render: time to first image and to re-render after a zoom, for 10^7 … 10^9 values.

A lazily generated 2-D array (``dask.array`` random blocks, float64, regenerated on every read,
as a dataset larger than memory would be read) is shown four ways, side by side in one run, on a
``LocalCluster`` of worker *processes* (so this process's RSS is the notebook server's share):

* **explore**: ``continuum_widgets.explore``'s app (aggregation on the workers, only the
  ``600 × 400`` image back), its Bokeh model built as JupyterLab would; zoom = the range stream's
  event, as the browser sends it;
* **datashader**: ``datashader.Canvas.quadmesh`` on the dask-backed array, then ``tf.shade``;
* **holoviews**: ``hv.Image`` of the whole array without rasterisation, rendered to its Bokeh
  model and serialised for the browser; it needs every value in this process, so it stops above
  ``--hv-max`` values (reported); a zoom is drawn by the browser, no server work;
* **decimated**: every k-th row and column (about the image's size) computed and drawn with
  holoviews/Bokeh (xarray's own ``.plot`` needs matplotlib, which the project does not ship);
  a zoom decimates the zoomed region again.

Each row gives seconds to the first image, seconds to re-render after zooming to the central
10 % of each axis, and this process's peak RSS (sampled every 20 ms). Goals on the 2-core
machine: explore's re-render of 10^8 values < 1 s; 10^9 completes with RSS < 1 GiB.

Run: ``/opt/continuum-hub/venv/bin/python bench/explore_render.py [--sizes 1e7 1e8 1e9]``.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dask.array as da
import datashader as ds
import datashader.transfer_functions as tf
import holoviews as hv
import numpy as np
import psutil
import xarray as xr
from bokeh.embed import json_item
from distributed import Client, LocalCluster

from continuum_widgets.explorer import Explorer

WIDTH, HEIGHT = 600, 400


@contextmanager
def peak_rss() -> Iterator[list[int]]:
    """Sample this process's RSS while the block runs; the list's last item is the peak."""
    process, peak, done = psutil.Process(), [psutil.Process().memory_info().rss], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[-1] = max(peak[-1], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def lazy_array(values: int) -> xr.DataArray:
    """A lazily generated float64 array of about ``values`` elements, 2:1, 32 MB chunks."""
    ny = int(math.sqrt(values / 2))
    nx = values // ny
    data = da.random.default_rng(0).random((ny, nx), chunks=(2048, 2048))
    return xr.DataArray(
        data,
        dims=("y", "x"),
        coords={"y": np.arange(ny, dtype=float), "x": np.arange(nx, dtype=float)},
    )


def zoom_extent(array: xr.DataArray) -> tuple[tuple[float, float], tuple[float, float]]:
    """The central 10 % of each axis."""
    ny, nx = array.shape
    return (0.45 * nx, 0.55 * nx), (0.45 * ny, 0.55 * ny)


def with_explore(array: xr.DataArray, client: Client) -> tuple[float, float]:
    start = time.perf_counter()
    explorer = Explorer(array.rename("v"), width=WIDTH, height=HEIGHT, client=client)
    explorer.panel().get_root()
    first = time.perf_counter() - start
    x_range, y_range = zoom_extent(array)
    start = time.perf_counter()
    explorer.range_stream.event(x_range=x_range, y_range=y_range)
    assert explorer.last is not None and explorer.last.x_range == x_range, explorer.message.object
    return first, time.perf_counter() - start


def with_datashader(array: xr.DataArray, client: Client) -> tuple[float, float]:
    def draw(**ranges: Any) -> None:
        tf.shade(ds.Canvas(plot_width=WIDTH, plot_height=HEIGHT, **ranges).quadmesh(array))

    start = time.perf_counter()
    draw()
    first = time.perf_counter() - start
    x_range, y_range = zoom_extent(array)
    start = time.perf_counter()
    draw(x_range=x_range, y_range=y_range)
    return first, time.perf_counter() - start


def with_holoviews(array: xr.DataArray, client: Client) -> tuple[float, float]:
    start = time.perf_counter()
    json_item(hv.render(hv.Image(array.compute()), backend="bokeh"))  # what goes to the browser
    return time.perf_counter() - start, 0.0  # a zoom is the browser's work


def with_decimation(array: xr.DataArray, client: Client) -> tuple[float, float]:
    def draw(part: xr.DataArray) -> None:
        step_y = max(1, part.shape[0] // HEIGHT)
        step_x = max(1, part.shape[1] // WIDTH)
        json_item(hv.render(hv.Image(part[::step_y, ::step_x].compute()), backend="bokeh"))

    start = time.perf_counter()
    draw(array)
    first = time.perf_counter() - start
    (x0, x1), (y0, y1) = zoom_extent(array)
    start = time.perf_counter()
    draw(array.sel(x=slice(x0, x1), y=slice(y0, y1)))
    return first, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e7, 1e8])
    parser.add_argument("--hv-max", type=float, default=2e7, help="holoviews' largest size")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    hv.renderer("bokeh")
    ways: dict[str, Callable[[xr.DataArray, Client], tuple[float, float]]] = {
        "explore": with_explore,
        "datashader": with_datashader,
        "holoviews": with_holoviews,
        "decimated": with_decimation,
    }
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as lc,
        Client(lc) as client,
    ):
        with_datashader(lazy_array(10**5), client)  # numba compiles once, outside the timings
        print(f"{'values':>8} {'way':<11} {'first s':>8} {'zoom s':>8} {'peak RSS':>9}")
        for size in args.sizes:
            array = lazy_array(int(size))
            for name, way in ways.items():
                if name == "holoviews" and size > args.hv_max:
                    print(
                        f"{size:>8.0e} {name:<11} stopped: above {args.hv_max:.0e} values "
                        f"({array.nbytes / 2**30:.1f} GiB would be loaded here)"
                    )
                    continue
                with peak_rss() as peak:
                    first, zoom = way(array, client)
                print(
                    f"{size:>8.0e} {name:<11} {first:>8.2f} {zoom:>8.2f} "
                    f"{peak[-1] / 2**20:>6.0f} MiB",
                    flush=True,
                )


if __name__ == "__main__":
    main()
