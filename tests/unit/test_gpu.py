"""On a real GPU: cupy is picked, and the analysis and explore aggregation equal the numpy path.

Marked ``gpu``, which ``addopts`` deselects: ``make test`` on a CPU machine runs none of this.
``bench/gpu_check.sh`` runs it (``-m gpu``) in a throwaway environment with ``cupy-cuda12x`` on a
machine with an NVIDIA GPU. Here the GPU and cupy are real; a missing one is a failure, not a skip.
"""

from __future__ import annotations

import explore_support
import numpy as np
import pytest
import xarray as xr
from distributed import Client, LocalCluster

from continuum_widgets import analysis
from continuum_widgets.aggregate import aggregate
from continuum_widgets.analysis import rfi_statistics, synthetic_visibilities
from continuum_widgets.explorer import Explorer

# not also `explore`: `pytest -m explore` (which replaces addopts' -m) must not select these
pytestmark = pytest.mark.gpu


fresh_device_choice = explore_support.fresh_device_choice


def on_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide the GPU from this process's next device choice."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    analysis.device_report.cache_clear()


def on_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    analysis.device_report.cache_clear()
    assert analysis.array_module_name() == "cupy", analysis.device_reason()


def field() -> xr.DataArray:
    rng = np.random.default_rng(11)
    values = rng.normal(size=(1500, 2000))
    values[rng.random(values.shape) < 0.02] = np.nan
    return xr.DataArray(
        values,
        dims=("y", "x"),
        coords={"y": np.linspace(-5, 5, 1500), "x": np.sort(rng.uniform(0, 100, 2000))},
    ).chunk({"y": 500, "x": 700})


def test_cupy_is_picked_when_a_gpu_is_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    on_gpu(monkeypatch)
    assert analysis.device_reason().startswith("cupy: ")


def test_rfi_statistics_are_identical_on_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    vis = synthetic_visibilities(256, 32, 96, seed=4, chunks=(64, 32, 48))
    on_numpy(monkeypatch)
    cpu = rfi_statistics(vis, scheduler="threads")
    on_gpu(monkeypatch)
    xr.testing.assert_identical(rfi_statistics(vis, scheduler="threads"), cpu)


def test_explore_aggregation_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    array = field()
    on_numpy(monkeypatch)
    cpu = aggregate(array, (0.0, 100.0), (-5.0, 5.0), 300, 200, scheduler="threads")
    on_gpu(monkeypatch)
    gpu = aggregate(array, (0.0, 100.0), (-5.0, 5.0), 300, 200, scheduler="threads")
    assert np.array_equal(cpu.counts, gpu.counts)  # integers: identical
    np.testing.assert_allclose(gpu.sums, cpu.sums, rtol=1e-12, atol=1e-12)  # float64 sums


def test_explore_names_the_gpu_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    on_gpu(monkeypatch)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        explorer = Explorer(field().rename("v"), width=100, height=80)
        explorer.panel().get_root()
        assert explorer.compute_line.object.startswith("aggregating on 2 GPU workers")
