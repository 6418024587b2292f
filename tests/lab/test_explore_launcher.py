"""``explore`` without a Dask client: its offer to start a cluster through the Dask Gateway, or to
run locally, against a real ``dask-gateway-server`` (``fixtures.local_gateway``).

The app runs on this test's event loop as on a kernel's: the first view is computed on local
threads; *Start a Dask cluster* (clicked as in the browser) asks the gateway for a cluster in a
thread while the loop stays free, and the views then aggregate on its worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from lab_support import local_gateway_fixture

from continuum_widgets.explorer import Explorer
from fixtures.local_gateway import LocalGateway

pytestmark = [
    pytest.mark.lab,
    pytest.mark.gateway,
    pytest.mark.explore,
    pytest.mark.integration,
    pytest.mark.slow,
]

gateway = local_gateway_fixture(max_workers=2)


def cube() -> xr.Dataset:
    data = da.random.default_rng(3).random((2, 120, 160), chunks=(1, 60, 80))
    coords = {"t": [0, 1], "y": np.arange(120.0), "x": np.arange(160.0)}
    return xr.Dataset({"v": (("t", "y", "x"), data)}, coords=coords)


async def until(condition: Callable[[], object], seconds: float) -> None:
    """Poll ``condition`` on the loop until it holds (fails after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_start_a_cluster_from_the_widget_then_views_compute_there(
    gateway: LocalGateway,
) -> None:
    explorer = Explorer(cube(), width=40, height=30, client=None)
    choice = explorer.choice
    assert choice is not None and choice.view.visible
    explorer.panel().get_root()
    await until(lambda: explorer.last is not None, 30)
    assert explorer.compute_line.object.startswith("aggregating locally")

    choice.gateway = gateway.gateway("alice")  # the server's Gateway(), here the local one
    choice.workers.value = 1
    choice.start_button.clicks += 1  # what a click in the browser does
    assert choice.start_button.disabled and choice.note.object.startswith("Starting a Dask")
    started = time.monotonic()
    lag = 0.0
    while explorer.client is None:  # the loop stays free while the gateway starts it
        tick = time.monotonic()
        await asyncio.sleep(0.01)
        lag = max(lag, time.monotonic() - tick - 0.01)
        assert time.monotonic() - started < 120, choice.note.object
    client = explorer.client
    try:
        assert lag < 0.5 and not choice.view.visible
        await until(lambda: "CPU workers" in explorer.compute_line.object, 60)
        line = explorer.compute_line.object
        assert line.startswith("aggregating on 1 CPU workers (numpy) of cluster ") and (
            choice.cluster.name in line
        )
        assert explorer.last.counts.sum() == 120 * 160
        with gateway.gateway("alice") as listing:
            assert choice.cluster.name in [c.name for c in listing.list_clusters()]
    finally:
        client.close()
        choice.cluster.shutdown()
        choice.gateway.close()


async def test_run_locally_and_a_refused_start_are_said_in_the_widget(
    gateway: LocalGateway,
) -> None:
    explorer = Explorer(cube(), width=40, height=30, client=None)
    explorer.panel().get_root()
    choice = explorer.choice
    refused = gateway.gateway("alice")
    refused.auth.password = "not-the-password"
    choice.gateway = refused
    choice.start_button.clicks += 1
    await until(lambda: not choice.start_button.disabled, 60)
    assert choice.note.object.startswith("Could not start a Dask cluster: ")
    assert choice.view.visible and explorer.client is None
    choice.local_button.clicks += 1
    assert not choice.view.visible and explorer.client is None
    await until(lambda: explorer.last is not None and explorer.background.job is None, 30)
    assert explorer.compute_line.object.startswith("aggregating locally")
    refused.close()
