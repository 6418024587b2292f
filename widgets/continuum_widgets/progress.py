"""Computing a view's aggregation without blocking the kernel: progress, and cancellation.

:func:`compute_blocks` is a coroutine run on the kernel's (or panel server's) event loop: it
computes the per-block aggregates of :func:`continuum_widgets.aggregate.aggregate_blocks` and
their sum, reporting ``(done, total)`` as it goes, and stops the work when it is cancelled (a
newer view replaced it). The event loop stays free meanwhile, so the widget keeps answering the
browser: a second zoom or a new variable cancels the first computation rather than waiting for it.

* With a :class:`distributed.Client`, the blocks are persisted on the workers (one future each:
  progress is the futures finished), then summed there; only the ``2 × h × w`` image comes back.
  Cancelling releases those futures, so the scheduler drops the work not yet done.
* Without one, dask's local threaded scheduler runs in a thread of the loop's executor; a dask
  callback counts the tasks finished and stops scheduling new ones once cancelled.

:class:`View` is what one view needs computed; :func:`compute_now` is the blocking path (no
running event loop: scripts, headless tests).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
from dask.callbacks import Callback

from continuum_widgets.aggregate import Aggregate

#: seconds between looks at a computation's progress (the widget updates only on change)
POLL_SECONDS = 0.1

#: ``on_progress(done, total)``
ProgressHook = Callable[[int, int], None]


@dataclass(frozen=True)
class View:
    """A view to aggregate: the selection's key, its extent, the per-block graph, bytes read."""

    key: tuple[Any, ...]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    blocks: da.Array = field(compare=False, repr=False)
    nbytes: int = 0

    def same(self, other: View) -> bool:
        """Whether ``other`` shows the same selection over the same extent (up to rounding)."""
        return self.key == other.key and close(
            (*self.x_range, *self.y_range), (*other.x_range, *other.y_range)
        )


def close(requested: tuple[float, ...], known: tuple[float, ...]) -> bool:
    """Whether two extents ``(x0, x1, y0, y1)`` agree up to rounding."""
    tolerance = 1e-9 * max(known[1] - known[0], known[3] - known[2], 1)
    return bool(np.allclose(requested, known, rtol=0, atol=tolerance))


def shows_extent(agg: Aggregate, x_range: Any, y_range: Any) -> bool:
    """Whether an extent is the aggregate's own, up to rounding in the browser's round trip."""
    return close((*map(float, x_range), *map(float, y_range)), (*agg.x_range, *agg.y_range))


def running_loop() -> bool:
    """Whether an event loop runs in this thread (a kernel's, a panel server's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Background:
    """One background computation at a time: starting one cancels the one before it."""

    def __init__(self) -> None:
        self.job: asyncio.Future[None] | None = None
        #: the view being computed
        self.pending: View | None = None

    def start(
        self,
        view: View,
        client: Any,
        on_progress: Callable[[View, int, int], None],
        on_done: Callable[[View, np.ndarray | Exception, float], None],
    ) -> None:
        """Compute ``view`` on the running loop; ``on_done(view, result or error, seconds)``
        is called there unless a newer computation replaced it."""
        self.cancel()
        self.pending = view
        # a context of its own: the task outlives the plot callback that may start it and must
        # not carry that callback's document context into its later updates
        self.job = asyncio.get_running_loop().create_task(
            self._run(view, client, (on_progress, on_done)), context=contextvars.Context()
        )

    def cancel(self) -> None:
        """Cancel the computation, if any (its pending work on the cluster is dropped)."""
        if self.job is not None and not self.job.done():
            self.job.cancel()
        self.job, self.pending = None, None

    async def _run(self, view: View, client: Any, hooks: tuple[Any, Any]) -> None:
        on_progress, on_done = hooks
        started = time.perf_counter()
        outcome: np.ndarray | Exception
        try:
            outcome = await compute_blocks(
                view.blocks, client, lambda done, total: on_progress(view, done, total)
            )
        except asyncio.CancelledError:
            raise  # replaced: the newer computation owns the progress and status
        except Exception as error:  # handed to on_done, which says it in the widget
            outcome = error
        if self.pending is view:
            self.job, self.pending = None, None
            on_done(view, outcome, time.perf_counter() - started)


class Cancelled(Exception):
    """Raised inside dask's local scheduler to stop a computation that was cancelled."""


def compute_now(blocks: da.Array, client: Any = None) -> np.ndarray:
    """The ``(2, h, w)`` sum of ``blocks`` (dims ``(by, bx, 2, h, w)``), blocking until done."""
    total = blocks.sum(axis=(0, 1))
    if client is not None:
        return np.asarray(client.compute(total).result())
    return np.asarray(total.compute(scheduler="threads"))


async def compute_blocks(
    blocks: da.Array, client: Any = None, on_progress: ProgressHook | None = None
) -> np.ndarray:
    """The ``(2, h, w)`` sum of ``blocks``, computed while the event loop stays free.

    Parameters
    ----------
    blocks
        Per-block aggregates, dims ``(by, bx, 2, h, w)`` (lazy).
    client
        A :class:`distributed.Client` (synchronous, as in a notebook) or ``None`` for local
        threads.
    on_progress
        Called on the event loop with ``(done, total)`` whenever the count changes.

    Raises
    ------
    asyncio.CancelledError
        When the task running it is cancelled; the work still pending is dropped.
    """
    report = _reporter(on_progress)
    if client is not None:
        return await _on_cluster(blocks, client, report)
    return await _on_threads(blocks, report)


def _reporter(on_progress: ProgressHook | None) -> ProgressHook:
    last: list[tuple[int, int]] = []

    def report(done: int, total: int) -> None:
        if on_progress is not None and [(done, total)] != last:
            last[:] = [(done, total)]
            on_progress(done, total)

    return report


async def _on_cluster(blocks: da.Array, client: Any, report: ProgressHook) -> np.ndarray:
    from distributed import futures_of

    persisted = client.persist(blocks)
    futures = futures_of(persisted)
    summed = None
    try:
        while True:
            done = [f for f in futures if f.done()]
            report(len(done), len(futures))
            failed = next((f for f in done if f.status == "error"), None)
            if failed is not None:
                failed.result()  # raises the worker's exception here
            if len(done) == len(futures):
                break
            await asyncio.sleep(POLL_SECONDS)
        summed = client.compute(persisted.sum(axis=(0, 1)))
        loop, finished = asyncio.get_running_loop(), asyncio.Event()
        # the client calls back from its own thread: hand the news to this loop
        summed.add_done_callback(lambda _future: loop.call_soon_threadsafe(finished.set))
        await finished.wait()
        return np.asarray(summed.result())
    except asyncio.CancelledError:
        # the scheduler forgets keys nobody wants: pending blocks are not computed
        client.cancel([*futures, *([summed] if summed is not None else [])])
        raise


class _Counter(Callback):
    """Counts finished tasks of one local computation; stops it once ``stop`` is set."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self.stop = stop
        self.done = 0
        self.total = 0

    def _start_state(self, dsk: Any, state: Any) -> None:
        self.total = len(dsk)

    def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
        if self.stop.is_set():
            raise Cancelled("cancelled: a newer view replaced this one")

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        self.done += 1


async def _on_threads(blocks: da.Array, report: ProgressHook) -> np.ndarray:
    stop = threading.Event()
    counter = _Counter(stop)

    def run() -> np.ndarray:
        with counter:
            return np.asarray(blocks.sum(axis=(0, 1)).compute(scheduler="threads"))

    work = asyncio.get_running_loop().run_in_executor(None, run)
    try:
        while not work.done():
            report(counter.done, max(counter.total, 1))
            await asyncio.wait({work}, timeout=POLL_SECONDS)
        report(counter.total, max(counter.total, 1))
        return work.result()
    except asyncio.CancelledError:
        stop.set()  # the thread stops at its next task; its result, if any, is dropped
        raise
