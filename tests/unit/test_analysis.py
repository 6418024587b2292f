"""The sample Dask analysis (``continuum_widgets.analysis``): exact, deterministic, device-neutral.

CI has no GPU and no cupy: the CPU path runs for real (threads and a distributed cluster); the
per-worker choice of the array module is tested with stand-ins for cupy at the import boundary.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import numpy as np
import pytest
import xarray as xr
from distributed import Client, LocalCluster

from continuum_widgets import analysis
from continuum_widgets.analysis import (
    array_module,
    rfi_statistics,
    statistics_from_histograms,
    synthetic_visibilities,
)

SMALL = {"n_time": 194, "n_baseline": 12, "n_channel": 40, "chunks": (50, 12, 16)}


@pytest.fixture(autouse=True)
def fresh_array_module() -> Iterator[None]:
    """``array_module`` caches its choice per process: forget it around each test."""
    analysis.device_report.cache_clear()
    yield
    analysis.device_report.cache_clear()


def flat(vis: xr.DataArray) -> np.ndarray:
    """The cube as (samples, channels), materialized with plain numpy."""
    cube = vis.values
    return cube.reshape(-1, cube.shape[2]).astype(np.int64)


def test_statistics_equal_a_direct_numpy_computation_exactly() -> None:
    vis = synthetic_visibilities(**SMALL, seed=7, rfi_channels=(3, 30))
    stats = rfi_statistics(vis, k=4.0, scheduler="threads")
    samples = flat(vis)
    median = np.median(samples, axis=0)
    mad = np.median(np.abs(samples - median), axis=0)
    threshold = median + 4.0 * analysis.MAD_TO_SIGMA * mad
    assert np.array_equal(stats.samples.values, np.full(40, 194 * 12))
    assert np.array_equal(stats.mean_amplitude.values, samples.sum(axis=0) / samples.shape[0])
    assert np.array_equal(stats.median_amplitude.values, median)
    assert np.array_equal(stats.mad.values, mad)
    assert np.array_equal(stats.flagged.values, (samples > threshold).sum(axis=0))
    assert stats.frequency.shape == (40,)


def test_injected_interference_is_found() -> None:
    vis = synthetic_visibilities(**SMALL, seed=1, rfi_channels=(5, 6, 33))
    stats = rfi_statistics(vis, scheduler="threads")
    assert np.flatnonzero(stats.rfi_channel.values).tolist() == [5, 6, 33]
    # a broadband burst every 97th integration: 2 of 194 here, seen in clean channels
    clean = ~stats.rfi_channel.values
    fraction = stats.flagged_fraction.values[clean]
    assert np.all(fraction >= 2 / 194)
    assert fraction.mean() < 2 / 194 + 0.005  # plus a few noise samples in the far tail


def test_the_cube_is_reproducible_from_its_seed() -> None:
    first = synthetic_visibilities(**SMALL, seed=11).values
    assert np.array_equal(first, synthetic_visibilities(**SMALL, seed=11).values)
    assert not np.array_equal(first, synthetic_visibilities(**SMALL, seed=12).values)


def test_a_distributed_cluster_gives_identical_results() -> None:
    vis = synthetic_visibilities(**SMALL, seed=5)
    local = rfi_statistics(vis, scheduler="threads")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        remote = rfi_statistics(vis)
        assert set(client.run(analysis.array_module_name).values()) == {"numpy"}
    xr.testing.assert_identical(local, remote)


def fake_cupy(devices: int) -> types.ModuleType:
    """A stand-in for cupy: numpy underneath, arrays with ``.get()`` like device arrays."""

    class DeviceArray(np.ndarray):
        def get(self) -> np.ndarray:
            return np.asarray(self).view(np.ndarray)

    module = types.ModuleType("cupy")
    module.int64 = np.int64
    module.arange = lambda *a, **kw: np.arange(*a, **kw).view(DeviceArray)
    module.asarray = lambda a: np.asarray(a).view(DeviceArray)
    module.bincount = lambda *a, **kw: np.bincount(*a, **kw).view(DeviceArray)
    module.zeros = np.zeros
    module.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: devices)
    )
    return module


def test_numpy_when_cupy_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # import fails
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert array_module() is np


@pytest.mark.parametrize(
    "devices,visible,expected",
    [(1, None, "cupy"), (0, None, "numpy"), (2, "", "numpy"), (2, "-1", "numpy"), (1, "0", "cupy")],
    ids=["gpu", "no-device", "hidden-empty", "hidden-minus-one", "gpu-0-visible"],
)
def test_cupy_only_when_a_gpu_is_visible(
    monkeypatch: pytest.MonkeyPatch, devices: int, visible: str | None, expected: str
) -> None:
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(devices))
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert analysis.array_module_name() == expected


def test_the_device_path_gives_identical_results(monkeypatch: pytest.MonkeyPatch) -> None:
    vis = synthetic_visibilities(**SMALL, seed=3)
    on_cpu = rfi_statistics(vis, scheduler="threads")
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(1))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    analysis.device_report.cache_clear()
    assert analysis.array_module_name() == "cupy"
    xr.testing.assert_identical(rfi_statistics(vis, scheduler="threads"), on_cpu)


@pytest.mark.parametrize(
    "counts,median,mad",
    [([[0, 1, 1, 0]], 1.5, 0.5), ([[3, 0, 0, 1]], 0.0, 0.0), ([[1, 1, 1, 1, 1]], 2.0, 1.0)],
    ids=["even-count", "skewed", "uniform"],
)
def test_histogram_median_and_mad_follow_numpy(
    counts: list[list[int]], median: float, mad: float
) -> None:
    stats = statistics_from_histograms(np.array(counts))
    values = np.repeat(np.arange(len(counts[0])), counts[0])
    assert stats["median_amplitude"][0] == median == np.median(values)
    assert stats["mad"][0] == mad == np.median(np.abs(values - np.median(values)))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"n_channel": 0}, "positive"),
        ({"chunks": (0, 1, 1)}, "positive"),
        ({"levels": 1}, "levels"),
    ],
    ids=["no-channels", "empty-chunk", "one-level"],
)
def test_bad_cube_parameters_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        synthetic_visibilities(**kwargs)


def test_float_amplitudes_are_refused() -> None:
    vis = synthetic_visibilities(**SMALL).astype(np.float32)
    with pytest.raises(TypeError, match="integers"):
        rfi_statistics(vis, scheduler="threads")
