"""The ``explore`` panel app built headless: its parts, callbacks, zoom, messages for bad input.

The app is rendered to its Bokeh model (what JupyterLab would display) and driven through its
widgets and the image's range stream, as a browser's zoom would.
"""

from __future__ import annotations

import sys

import dask.array as da
import explore_support
import numpy as np
import panel as pn
import psutil
import pytest
import xarray as xr
from distributed import Client, LocalCluster
from explore_support import fake_cupy

from continuum_widgets import explore
from continuum_widgets.explorer import Explorer

pytestmark = pytest.mark.explore


fresh_device_choice = explore_support.fresh_device_choice


def cube() -> xr.Dataset:
    """Two lazy variables over (time, y, x) and one over (time,) that cannot be shown."""
    data = da.random.default_rng(1).random((4, 200, 300), chunks=(1, 100, 100))
    coords = {"time": np.arange(4) * 10, "y": np.linspace(-1, 1, 200), "x": np.arange(300.0)}
    return xr.Dataset(
        {
            "a": (("time", "y", "x"), data),
            "b": (("time", "y", "x"), data * 2 - 1),
            "series": (("time",), np.arange(4.0)),
        },
        coords=coords,
    )


def test_the_app_shows_variables_selectors_image_and_histogram() -> None:
    explorer = Explorer(cube(), width=60, height=40)
    assert explorer.variables == ["a", "b"]
    assert list(explorer.selectors) == ["time"]
    root = explorer.panel().get_root()  # the Bokeh model JupyterLab displays
    assert root is not None
    assert explorer.last is not None and explorer.last.counts.sum() == 200 * 300
    assert explorer.last.x_range == pytest.approx((0.0, 299.0))
    assert explorer.last.y_range == pytest.approx((-1.0, 1.0))
    assert explorer.compute_line.object.startswith("aggregating locally on")
    assert "(numpy)" in explorer.compute_line.object and "480.0 kB touched" in (
        explorer.compute_line.object
    )
    edges, counts = explorer.histogram_pipe.data
    assert len(edges) == 41 and counts.sum() == 200 * 300
    assert not explorer.message.visible and not explorer.progress.active
    assert explorer.status.object.startswith("ready: 480.0 kB in ")


def test_zoom_re_aggregates_at_the_new_extent() -> None:
    explorer = Explorer(cube(), width=60, height=40)
    explorer.panel().get_root()
    full = explorer.last
    explorer.range_stream.event(x_range=(100.0, 160.0), y_range=(0.0, 0.5))
    zoomed = explorer.last
    assert zoomed is not full
    assert zoomed.x_range == (100.0, 160.0) and zoomed.y_range == (0.0, 0.5)
    assert zoomed.nbytes < full.nbytes
    inside = ((explorer.dataset.y >= 0) & (explorer.dataset.y <= 0.5)).sum().item()
    assert zoomed.counts.sum() == 61 * inside


def test_variable_and_selector_changes_re_render() -> None:
    explorer = Explorer(cube(), width=30, height=20)
    explorer.panel().get_root()
    first = explorer.last
    explorer.selectors["time"].value = 2
    second = explorer.last
    assert second is not first
    explorer.variable.value = "b"
    third = explorer.last
    assert third is not second and third.mean[np.isfinite(third.mean)].min() < 0


def test_a_nan_only_slice_says_so_in_the_widget() -> None:
    data = cube()
    data["a"] = data["a"].where(data.time != 20)
    explorer = Explorer(data, width=30, height=20)
    explorer.panel().get_root()
    explorer.selectors["time"].value = 2
    assert explorer.message.visible
    assert "all NaN" in explorer.message.object


def test_bad_input_gets_a_message_not_an_exception() -> None:
    nothing = explore(xr.Dataset({"series": (("time",), np.arange(3.0))}))
    assert isinstance(nothing, pn.pane.Alert)
    assert "no numeric variable has two dimensions" in nothing.object
    assert "explore needs an xarray Dataset" in explore([1, 2, 3]).object
    stations = xr.DataArray(
        np.zeros((3, 100_000), np.float32),
        dims=("time", "station"),
        coords={"station": [f"s{i}" for i in range(100_000)]},
        name="flux",
    )
    refused = Explorer(stations, width=20, height=10)
    refused.panel().get_root()
    assert refused.message.visible
    assert "'station' has 100,000 categories" in refused.message.object
    # as a dimension that is not plotted, 10^5 stations get a slider over positions
    per_station = Explorer(stations.expand_dims(band=[1, 2]).transpose("station", ...), width=8)
    slider = per_station.selectors["station"]
    assert isinstance(slider, pn.widgets.IntSlider) and slider.end == 99_999
    explorer = Explorer(stations.T.isel(station=slice(0, 500)), width=20, height=10)
    assert explorer.last is None  # built lazily; labels on an axis become positions
    explorer.panel().get_root()
    assert explorer.last.counts.sum() == 500 * 3


def test_a_terabyte_lazy_array_without_cluster_is_refused_in_the_widget() -> None:
    process = psutil.Process()
    before = process.memory_info().rss
    huge = xr.DataArray(
        da.zeros((2, 2**19, 2**18), dtype=np.float32, chunks=(1, 8192, 8192)),
        dims=("band", "y", "x"),
        name="sky",
    )
    explorer = Explorer(huge, client=None, local_limit=2**30, width=50, height=50)
    explorer.panel().get_root()
    assert explorer.message.visible and "no Dask cluster is connected" in explorer.message.object
    assert "549.8 GB" in explorer.message.object
    assert process.memory_info().rss - before < 300 * 2**20


def test_the_cluster_line_names_gpu_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        explorer = Explorer(cube(), width=30, height=20)
        assert explorer.client is client
        explorer.panel().get_root()
        line = explorer.compute_line.object
    assert line.startswith("aggregating on 2 GPU workers of cluster")
    assert "2 workers" in line and "kB touched" in line


def test_a_cluster_without_workers_is_said_not_waited_for() -> None:
    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        explorer = Explorer(cube(), width=30, height=20, client=client)
        explorer.panel().get_root()
        assert explorer.message.visible and "has no workers yet" in explorer.message.object
