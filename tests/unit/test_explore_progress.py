"""``explore`` computing in the background: progress while the cluster works, a responsive loop,
a newer interaction cancelling the older one.

The app runs on this test's event loop as it does on a kernel's: a view's aggregation is a task
on the loop, its blocks computed by local threads or a ``LocalCluster``'s workers; each block
of the data takes a little while (a deliberately slow generator), so a view takes a second or
more and the test can watch it, interact meanwhile and see the work of the replaced view stop.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import dask.array as da
import explore_support
import numpy as np
import pytest
import xarray as xr
from distributed import Client, LocalCluster

from continuum_widgets.explorer import Explorer

pytestmark = pytest.mark.explore

fresh_device_choice = explore_support.fresh_device_choice

#: blocks per variable; each takes BLOCK_SECONDS to generate
BLOCKS = 24
BLOCK_SECONDS = 0.08


#: blocks made, per (data set, variable); top level, so that workers in this process count here
MADE: dict[str, int] = {}
MADE_LOCK = threading.Lock()


def make_block(tag: str, offset: float, block_info: dict[Any, Any] | None = None) -> np.ndarray:
    """One block of a slow variable (a module function: the cluster pickles it by reference)."""
    time.sleep(BLOCK_SECONDS)  # stands for reading or generating a large block
    with MADE_LOCK:
        MADE[tag] = MADE.get(tag, 0) + 1
    shape = block_info[None]["chunk-shape"]
    return np.random.default_rng(0).random(shape) + offset


class SlowData:
    """Two variables whose blocks take a while to make; counts the blocks made of each."""

    def __init__(self) -> None:
        self.tag = f"data-{id(self)}-{time.monotonic_ns()}"

    def made(self, name: str) -> int:
        """Blocks of variable ``name`` made so far."""
        return MADE.get(f"{self.tag}:{name}", 0)

    def dataset(self) -> xr.Dataset:
        def variable(name: str, offset: float) -> da.Array:
            return da.map_blocks(
                make_block,
                chunks=((50,) * 4, (50,) * (BLOCKS // 4)),
                dtype=np.float64,
                meta=np.empty((0, 0)),
                tag=f"{self.tag}:{name}",
                offset=offset,
            )

        coords = {"y": np.arange(200.0), "x": np.arange(50.0 * (BLOCKS // 4))}
        names = {"a": 0.0, "b": -5.0, "c": -10.0}
        return xr.Dataset(
            {name: (("y", "x"), variable(name, offset)) for name, offset in names.items()},
            coords=coords,
        )


async def until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """Poll ``condition`` on the loop until it holds (fails after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def loop_lag(while_true: Callable[[], bool]) -> float:
    """The longest the loop took to come back to this coroutine while ``while_true()``."""
    worst = 0.0
    while while_true():
        started = time.monotonic()
        await asyncio.sleep(0.01)
        worst = max(worst, time.monotonic() - started - 0.01)
    return worst


async def watch_and_replace(explorer: Explorer, data: SlowData) -> list[int]:
    """Show the app, choose another variable, watch its progress, choose a third one half way;
    the progress values seen."""
    explorer.panel().get_root()  # the Bokeh model a notebook displays
    # the first view is computed before display, even with a loop running (as in a kernel)
    assert explorer.last is not None and explorer.background.job is None
    assert data.made("a") == BLOCKS
    seen: list[int] = []
    explorer.progress.param.watch(lambda event: seen.append(event.new), "value")
    explorer.variable.value = "b"  # from the browser: computed in the background
    assert explorer.background.pending is not None and explorer.variable.value == "b"
    assert explorer.progress.active and explorer.status.object.startswith("computing")
    first = explorer.background.job
    lag = asyncio.ensure_future(loop_lag(lambda: explorer.background.job is not None))
    await until(lambda: 0 < explorer.progress.value < 100)
    # blocks (on a cluster) or tasks (local threads) done of all
    assert re.fullmatch(r"computing 480\.0 kB… \d+/\d+", explorer.status.object)
    explorer.variable.value = "c"  # a second interaction while the first computes
    assert explorer.background.job is not first and first is not None and first.cancelling()
    await until(lambda: explorer.background.job is None)
    assert await lag < 1.0  # the loop (a kernel's: the browser's messages) stayed free
    mean = explorer.last.mean
    assert explorer.variable.value == "c" and mean[np.isfinite(mean)].max() < -9
    assert explorer.last.counts.sum() == 200 * 50 * (BLOCKS // 4)
    assert not explorer.progress.active and explorer.status.object.startswith("ready: ")
    assert explorer.image_pipe.data is explorer.shown is not None
    return seen


async def test_local_threads_progress_and_a_second_interaction_cancels_the_first() -> None:
    data = SlowData()
    explorer = Explorer(data.dataset(), width=40, height=20, client=None)
    assert explorer.running_asynchronously()  # an event loop runs here, as in a kernel
    seen = await watch_and_replace(explorer, data)
    assert any(0 < value < 100 for value in seen)
    # the replaced view stopped early: not every block of "b" was made
    assert data.made("b") < BLOCKS and data.made("c") == BLOCKS


async def test_cluster_progress_counts_blocks_and_cancels_on_the_workers() -> None:
    data = SlowData()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        explorer = Explorer(data.dataset(), width=40, height=20, client=client)
        seen = await watch_and_replace(explorer, data)
        assert any(0 < value < 100 for value in seen)
        assert data.made("b") < BLOCKS and data.made("c") == BLOCKS
        assert explorer.compute_line.object.startswith("aggregating on 2 CPU workers")


async def test_a_zoom_while_computing_replaces_the_view_and_errors_show_in_the_widget() -> None:
    data = SlowData()
    dataset = data.dataset()
    dataset["d"] = dataset["a"].copy(
        data=da.map_blocks(broken, dataset["a"].data, dtype=np.float64)
    )
    explorer = Explorer(dataset, width=40, height=20, client=None)
    explorer.panel().get_root()
    explorer.variable.value = "b"
    await until(lambda: explorer.progress.value > 0)
    explorer.range_stream.event(x_range=(0.0, 49.0), y_range=(0.0, 49.0))
    await until(lambda: explorer.background.job is None)
    assert explorer.last.x_range == (0.0, 49.0) and explorer.last.counts.sum() == 50 * 50
    assert explorer.last.mean[np.isfinite(explorer.last.mean)].max() < -4  # b's values
    # the plot reporting the extent it now shows: no new computation
    explorer.range_stream.event(x_range=(0.0, 49.0), y_range=(0.0, 49.0))
    assert explorer.background.job is None
    # back to the view shown while another computes: that one is cancelled, the image kept
    explorer.range_stream.event(x_range=(0.0, 99.0), y_range=(0.0, 99.0))
    assert explorer.background.job is not None
    explorer.range_stream.event(x_range=(0.0, 49.0), y_range=(0.0, 49.0))
    assert explorer.background.job is None and not explorer.progress.active
    # a failure on the way is a message in the widget, the kernel untouched
    explorer.variable.value = "d"
    await until(lambda: explorer.message.visible)
    assert "the computation failed: RuntimeError: disk gone" in explorer.message.object
    assert not explorer.progress.active


def broken(block: np.ndarray) -> np.ndarray:
    raise RuntimeError("disk gone")
