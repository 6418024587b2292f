"""Aggregation behind ``explore`` (``continuum_widgets.aggregate``): exact counts, cropping, bounds.

The CPU path runs for real (threads and an in-process distributed cluster); the GPU path's
device choice is exercised with a stand-in for cupy at the import boundary here, and with the
real cupy in ``tests/unit/test_gpu.py`` (marker ``gpu``, run by ``bench/gpu_check.sh``).
"""

from __future__ import annotations

import sys
from typing import Any

import dask.array as da
import explore_support
import numpy as np
import psutil
import pytest
import xarray as xr
from distributed import Client, LocalCluster
from explore_support import fake_cupy

from continuum_widgets import analysis
from continuum_widgets.aggregate import ExploreError, aggregate, aggregate_lazy, crop

pytestmark = pytest.mark.explore


fresh_device_choice = explore_support.fresh_device_choice


def field(ny: int = 300, nx: int = 500, chunks: tuple[int, int] = (70, 90)) -> xr.DataArray:
    """A lazy 2-D field on irregular, increasing coordinates, with some NaNs."""
    rng = np.random.default_rng(5)
    values = rng.normal(size=(ny, nx))
    values[rng.random((ny, nx)) < 0.05] = np.nan
    return xr.DataArray(
        da.from_array(values, chunks=chunks),
        dims=("lat", "lon"),
        coords={
            "lat": np.sort(rng.uniform(-60.0, 60.0, ny)),
            "lon": np.sort(rng.uniform(0.0, 360.0, nx)),
        },
        name="t",
    )


def reference(
    array: xr.DataArray, x_range: tuple[float, float], y_range: tuple[float, float], w: int, h: int
) -> tuple[np.ndarray, np.ndarray]:
    """Counts and sums per pixel by ``numpy.histogram2d`` over every finite value."""
    values = np.asarray(array.values)
    lat, lon = np.meshgrid(array["lat"].values, array["lon"].values, indexing="ij")
    finite = np.isfinite(values)
    bins, extent = (h, w), [list(y_range), list(x_range)]
    counts, _, _ = np.histogram2d(lat[finite], lon[finite], bins=bins, range=extent)
    sums, _, _ = np.histogram2d(
        lat[finite], lon[finite], bins=bins, range=extent, weights=values[finite]
    )
    return counts.astype(np.int64), sums


@pytest.mark.parametrize(
    "x_range,y_range,share",
    [((0.0, 360.0), (-60.0, 60.0), 1.0), ((100.0, 140.0), (-10.0, 25.0), 0.1)],
    ids=["whole", "zoom"],
)
def test_counts_equal_a_numpy_histogram_exactly(
    x_range: tuple[float, float], y_range: tuple[float, float], share: float
) -> None:
    array = field()
    result = aggregate(array, x_range, y_range, width=40, height=20, scheduler="threads")
    counts, sums = reference(array, x_range, y_range, 40, 20)
    assert np.array_equal(result.counts, counts) and counts.sum() > 0
    np.testing.assert_allclose(result.sums, sums, rtol=1e-12, atol=1e-12)
    assert result.x_range == x_range and result.y_range == y_range
    assert 0 < result.nbytes <= array.nbytes * share  # a zoom reads only the chunks it overlaps


def test_decreasing_coordinates_and_other_chunkings_agree() -> None:
    array = field(chunks=(300, 500))
    flipped = array.isel(lat=slice(None, None, -1)).chunk({"lat": 33, "lon": 250})
    x_range, y_range = (10.0, 300.0), (-50.0, 40.0)
    one = aggregate(array, x_range, y_range, width=40, height=30, scheduler="threads")
    other = aggregate(flipped, x_range, y_range, width=40, height=30, scheduler="threads")
    assert np.array_equal(one.counts, other.counts)
    np.testing.assert_allclose(one.sums, other.sums, rtol=1e-12)


def test_a_distributed_cluster_gives_the_same_counts() -> None:
    array = field()
    x_range, y_range = (0.0, 360.0), (-60.0, 60.0)
    local = aggregate(array, x_range, y_range, width=50, height=50, scheduler="threads")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        remote = aggregate(array, x_range, y_range, width=50, height=50)
    assert np.array_equal(local.counts, remote.counts)


def test_non_monotonic_coordinates_are_named() -> None:
    array = field().isel(lon=[0, 2, 1, 3, 4])
    with pytest.raises(ExploreError, match=r"'lon' is not monotonic.*sortby\('lon'\)"):
        crop(array, (0.0, 10.0), (-60.0, 60.0))


def test_a_terabyte_without_cluster_is_refused_and_never_loaded() -> None:
    process = psutil.Process()
    before = process.memory_info().rss
    huge = xr.DataArray(
        da.zeros((2**19, 2**18), dtype=np.float64, chunks=(8192, 8192)),
        dims=("y", "x"),
        coords={"y": np.arange(2**19), "x": np.arange(2**18)},
    )
    assert huge.nbytes == 2**40
    with pytest.raises(ExploreError, match=r"1\.1 TB of lazy data and no Dask cluster"):
        aggregate_lazy(huge, (0, 2**18), (0, 2**19), 100, 100, local_limit=2**30)
    assert process.memory_info().rss - before < 200 * 2**20
    graph, nbytes = aggregate_lazy(huge, (0, 99), (0, 99), 10, 10, local_limit=2**30)
    assert nbytes < 2**20 and graph.shape == (2, 10, 10)  # a small zoom is fine


def test_the_device_path_gives_the_same_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    array = field()
    on_cpu = aggregate(array, (0.0, 360.0), (-60.0, 60.0), 40, 40, scheduler="threads")
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    analysis.device_report.cache_clear()  # the CPU run above decided for this process
    assert analysis.device_reason() == "cupy: 1 GPU usable"
    on_device = aggregate(array, (0.0, 360.0), (-60.0, 60.0), 40, 40, scheduler="threads")
    assert np.array_equal(on_cpu.counts, on_device.counts)
    np.testing.assert_allclose(on_cpu.sums, on_device.sums, rtol=1e-12)


def no_device(*_: Any) -> int:
    raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")


@pytest.mark.parametrize(
    "visible,count,reason",
    [
        (None, no_device, "numpy: no usable GPU (RuntimeError: cudaErrorNoDevice"),
        (None, lambda: 0, "numpy: the CUDA runtime sees no GPU"),
        ("NoDevFiles", lambda: 1, "numpy: CUDA_VISIBLE_DEVICES='NoDevFiles' hides every GPU"),
    ],
    ids=["unset-no-gpu", "unset-zero-devices", "slurm-without-gres"],
)
def test_no_usable_gpu_picks_numpy_without_raising(
    monkeypatch: pytest.MonkeyPatch, visible: str | None, count: Any, reason: str
) -> None:
    cupy = fake_cupy()
    cupy.cuda.runtime.getDeviceCount = count
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert analysis.array_module() is np
    assert analysis.device_reason().startswith(reason)
    result = aggregate(field(), (0.0, 360.0), (-60.0, 60.0), 8, 8, scheduler="threads")
    assert result.counts.sum() > 0


def test_zoomed_beyond_the_data_the_image_has_one_pixel_per_value() -> None:
    array = field(ny=40, nx=50).assign_coords(lat=np.arange(40.0), lon=np.arange(50.0))
    result = aggregate(array, (10.0, 14.0), (0.0, 39.0), width=600, height=400, scheduler="threads")
    assert result.counts.shape == (40, 5)  # 5 columns and 40 rows inside the extent
    assert np.array_equal(result.counts, np.isfinite(array.values[:, 10:15]).astype(np.int64))
