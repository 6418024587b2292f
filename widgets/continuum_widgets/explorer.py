"""``explore(obj)``: look at an xarray dataset larger than the server's memory, in a panel app.

The app shows a variable picker, a selector for each dimension that is not plotted, an image of
the chosen 2-D slice rasterised onto the screen's pixels (:mod:`continuum_widgets.aggregate`:
binned on the current Dask client's workers — cupy on GPU workers — or on local threads; only the
image comes back), a histogram of the values in view, zoom and pan that re-aggregate at the new
extent, a progress bar, and a line naming the cluster, its workers, their device and the bytes
touched. In a kernel a view computes in the background (:mod:`continuum_widgets.progress`): the
kernel stays free and a newer view cancels an older one. Without a client it offers to start a
cluster (:class:`~continuum_widgets.connect.ClusterChoice`); a catalogue entry id is opened from
its replica at this site (:mod:`continuum_widgets.catalogue`). Typical use in a notebook::

    import xarray as xr
    from continuum_widgets import explore
    explore(xr.open_zarr("/data/survey.zarr"))      # lazy; computed on the current client

Bad input (no plottable 2-D variable, a non-monotonic coordinate, too many categories, a slice
with only NaN, a lazy view above the local bound with no cluster) gives a message in the widget,
never an exception in the kernel's face or a load of the whole array.
"""

from __future__ import annotations

import time
from typing import Any

import dask.array as da
import holoviews as hv
import numpy as np
import panel as pn
import xarray as xr

from continuum_widgets.aggregate import (
    Aggregate,
    ExploreError,
    aggregate_blocks,
    default_local_limit,
    extent_of,
    human_bytes,
    pixel_centres,
)
from continuum_widgets.connect import ClusterChoice, current_client, describe_compute
from continuum_widgets.datasets import (
    MAX_SELECT_OPTIONS,
    as_dataset,
    numeric_axis,
    plottable_variables,
)
from continuum_widgets.progress import Background, View, compute_now, running_loop, shows_extent


class Explorer:
    """The app behind :func:`explore`; its parts are attributes, so tests can drive it headless.

    Parameters
    ----------
    obj
        An :class:`xarray.Dataset` or :class:`xarray.DataArray`, in memory or dask-backed.
    x, y
        Dimensions to plot; default: each variable's last two.
    width, height
        The image's size in pixels (the aggregation's resolution).
    client
        A :class:`distributed.Client` to compute on; default: the current one, if any.
    local_limit
        Bytes a view may touch when computed in this process; default
        :func:`continuum_widgets.aggregate.default_local_limit`.
    asynchronous
        Compute views in the background (progress shown, the kernel free, a newer view
        cancelling an older one); default: whenever an event loop runs in this process.
    """

    def __init__(
        self,
        obj: Any,
        *,
        x: str | None = None,
        y: str | None = None,
        width: int = 600,
        height: int = 400,
        client: Any = None,
        local_limit: int | None = None,
        asynchronous: bool | None = None,
    ) -> None:
        hv.renderer("bokeh")  # loads holoviews' bokeh plotting without notebook output
        self.dataset = as_dataset(obj)
        self.variables = plottable_variables(self.dataset)
        self.x, self.y, self.width, self.height = x, y, width, height
        self.client = client if client is not None else current_client()
        self.local_limit = local_limit if local_limit is not None else default_local_limit()
        self.asynchronous = asynchronous
        self.last: Aggregate | None = None
        #: the image shown, the background computation and its view, its undelivered outcome
        self.shown: hv.Image | None = None
        self.background = Background()
        self.layout: pn.Column | None = None
        self._last_key: tuple[Any, ...] = ()
        self.variable = pn.widgets.Select(
            label="Variable", options=self.variables, value=self.variables[0]
        )
        self.selectors: dict[str, pn.widgets.Widget] = {}
        self.selector_row = pn.Row()
        # idle: an empty bar and "ready …"; computing: an indeterminate, animated bar
        self.progress = pn.indicators.Progress(value=0, max=100, active=False, width=160)
        self.status = pn.pane.Str("starting", styles={"font-size": "12px"})
        self.message = pn.pane.Alert("", alert_type="danger", visible=False)
        self.compute_line = pn.pane.Markdown("")
        self.histogram_pipe = hv.streams.Pipe(data=([], []))
        self._full_extent = True
        # the image changes only when a view's outcome arrives (image_pipe); the plot's extent
        # (range_stream, the browser's zoom and pan) asks for views without redrawing anything,
        # so a view still computing never snaps the plot back to the extent drawn before it
        self.image_pipe = hv.streams.Pipe(data=None)
        self.image = hv.DynamicMap(
            lambda data: data if data is not None else self._blank(), streams=[self.image_pipe]
        )
        self.range_stream = hv.streams.RangeXY(source=self.image)
        self.range_stream.add_subscriber(self._on_range)
        self.histogram = hv.DynamicMap(
            lambda data: hv.Histogram(data, kdims=["value"], vdims=["count"]).opts(
                width=300, height=self.height, title="values in view (pixel means)", framewise=True
            ),
            streams=[self.histogram_pipe],
        )
        self.variable.param.watch(self._on_variable, "value")
        self._build_selectors()
        # no client: offer one on the kernel's site (or local threads, as now)
        self.choice = ClusterChoice(self.use_client) if self.client is None else None

    def use_client(self, client: Any) -> None:
        """Compute on ``client`` from now on (``None``: local threads); re-renders the view."""
        self.cancel()
        self.client, self.last, self._last_key = client, None, ()
        self.refresh()

    # -- the slice -------------------------------------------------------------------------

    def plot_dims(self, name: str | None = None) -> tuple[str, str]:
        """(y, x) dimensions plotted for a variable (the chosen one by default)."""
        dims = [str(d) for d in self.dataset[name or self.variable.value].dims]
        x = self.x if self.x in dims else dims[-1]
        y = self.y if self.y in dims and self.y != x else next(d for d in reversed(dims) if d != x)
        return y, x

    def current_slice(self) -> xr.DataArray:
        """The chosen variable at the selectors' positions, dims ``(y, x)``, still lazy."""
        y, x = self.plot_dims()
        array = self.dataset[self.variable.value]
        positions = {dim: int(widget.value) for dim, widget in self.selectors.items()}
        array = array.isel(positions).transpose(y, x)
        return numeric_axis(numeric_axis(array, y), x)

    def _build_selectors(self) -> None:
        y, x = self.plot_dims()
        self.selectors = {}
        for dim in self.dataset[self.variable.value].dims:
            if dim in (x, y):
                continue
            size = self.dataset.sizes[dim]
            labels = self.dataset[dim].values if dim in self.dataset.coords else np.arange(size)
            if size <= MAX_SELECT_OPTIONS:
                options = {str(label): i for i, label in enumerate(labels)}
                widget = pn.widgets.Select(label=str(dim), options=options, value=0)
            else:  # 10^5 labels make a useless drop-down: a slider over positions instead
                widget = pn.widgets.IntSlider(label=f"{dim} (position)", start=0, end=size - 1)
            widget.param.watch(lambda _event: self.refresh(), "value")
            self.selectors[str(dim)] = widget
        self.selector_row.objects = list(self.selectors.values())

    def _on_variable(self, _event: Any) -> None:
        self._build_selectors()
        self._full_extent = True
        self.refresh()

    def refresh(self) -> None:
        """Re-aggregate the current view (after a change of variable or selector): over the
        whole slice after a change of variable, else at the plot's extent."""
        full, self._full_extent = self._full_extent, False
        stream = self.range_stream
        self.update(*((None, None) if full else (stream.x_range, stream.y_range)))

    def _on_range(self, x_range: Any = None, y_range: Any = None) -> None:
        if x_range is not None and y_range is not None:
            self.update(x_range, y_range)

    # -- aggregation -----------------------------------------------------------------------

    def request(self, x_range: Any = None, y_range: Any = None) -> Aggregate | View:
        """What showing an extent (default: all of the slice) needs: the aggregate already
        computed for it, or the :class:`View` to compute. Raises :class:`ExploreError`."""
        array = self.current_slice()
        y, x = array.dims
        if x_range is None or y_range is None:
            x_range, y_range = extent_of(array[x].values), extent_of(array[y].values)
        key = (self.variable.value, *(w.value for w in self.selectors.values()))
        xs, ys = (float(x_range[0]), float(x_range[1])), (float(y_range[0]), float(y_range[1]))
        last = self.last
        if last is not None and self._last_key == key and shows_extent(last, xs, ys):
            return last  # the plot reporting the extent it was just drawn at: nothing new
        limit = None if self.client is not None else self.local_limit
        blocks, nbytes = aggregate_blocks(array, (xs, ys), (self.width, self.height), limit)
        if self.client is not None and not self.client.scheduler_info().get("workers"):
            # a result would wait for a worker forever, and the kernel with it
            raise ExploreError(
                "the Dask cluster has no workers yet: scale it (cluster.scale(2), or the "
                "Dask clusters panel), then move the view or a selector"
            )
        return View(key, xs, ys, blocks, nbytes)

    def compute_view(self, view: View) -> Aggregate:
        """Compute ``view``, blocking until done; raises ExploreError."""
        self._busy(view)
        started = time.perf_counter()
        try:
            result = compute_now(view.blocks, self.client)
        finally:
            self._idle()
        return self._finish(view, result, time.perf_counter() - started)

    def _busy(self, view: View) -> None:
        self.progress.value, self.progress.active = -1, True
        self.status.object = f"computing {human_bytes(view.nbytes)}…"

    def _idle(self, status: str | None = None) -> None:
        self.progress.value, self.progress.active = 0, False
        self.status.object = status if status is not None else self.status.object

    def _on_progress(self, view: View, done: int, total: int) -> None:
        self.progress.value = int(100 * done / total) if total else -1
        self.status.object = f"computing {human_bytes(view.nbytes)}… {done}/{total}"
        self._push()

    def _push(self) -> None:
        # changes made in a background task, outside a browser event's handling, are held in
        # the notebook's documents until something sends them: send them now
        if self.layout is not None:
            pn.io.push_notebook(self.layout)

    def _finish(self, view: View, result: np.ndarray, elapsed: float) -> Aggregate:
        self.status.object = f"ready: {human_bytes(view.nbytes)} in {elapsed:.2f} s"
        self._last_key = view.key
        counts = np.rint(result[0]).astype(np.int64)
        agg = Aggregate(counts, result[1], view.x_range, view.y_range, view.nbytes)
        if not agg.counts.any():
            raise ExploreError(
                f"no finite value of {self.variable.value!r} in this view: the slice is all NaN "
                "here; move a selector or zoom out"
            )
        return agg

    # -- computing while the kernel stays responsive ---------------------------------------

    def running_asynchronously(self) -> bool:
        """Whether views compute in the background: ``asynchronous``, or by default whenever an
        event loop runs here (a kernel, a panel server) to deliver the result."""
        return self.asynchronous if self.asynchronous is not None else running_loop()

    def _start(self, view: View) -> None:
        """Compute ``view`` in the background, cancelling the computation it replaces."""
        self._busy(view)
        self.background.start(view, self.client, self._on_progress, self._arrived)

    def cancel(self) -> None:
        """Cancel the background computation, if any (its work on the cluster is dropped)."""
        self.background.cancel()

    def _arrived(self, view: View, result: np.ndarray | Exception, elapsed: float) -> None:
        """A background computation's outcome: shown in the image, or as a message."""
        self._idle()
        try:
            if isinstance(result, Exception):
                raise result
            self._present(self._finish(view, result, elapsed))
        except ExploreError as error:
            self._present(error)
        except Exception as error:  # a worker's failure is shown, not lost in a task
            self.status.object = "failed"
            self._present(ExploreError(f"the computation failed: {type(error).__name__}: {error}"))
        self._push()

    # -- the image -------------------------------------------------------------------------

    def update(self, x_range: Any = None, y_range: Any = None, now: bool = False) -> None:
        """Show the view at an extent (default: the whole slice): computed in this call (with
        ``now``, or no event loop here), else in the background and shown when it arrives."""
        try:
            view = self.request(x_range, y_range)
            if isinstance(view, Aggregate):
                if self.background.pending is not None:  # back to the view shown: keep it
                    self.cancel()
                    self._idle("ready")
                if view is not self.last or self.shown is None:
                    self._present(view)
                return  # the plot reporting the extent it was just drawn at
            if self.running_asynchronously() and not now:
                pending = self.background.pending
                if pending is None or not pending.same(view):
                    self._start(view)
                return
            agg = self.compute_view(view)
        except ExploreError as error:
            self.cancel()
            self._present(error)
            return
        self._present(agg)

    def _present(self, outcome: Aggregate | ExploreError) -> None:
        if isinstance(outcome, ExploreError):
            self.image_pipe.send(self._failed(outcome))
        else:
            self.last = outcome
            self.image_pipe.send(self._show(outcome))

    def _blank(self) -> hv.Image:
        """An empty image over the whole slice, so the plot keeps asking for the same extent."""
        y, x = self.plot_dims()
        try:
            array = self.current_slice()
            (x0, x1), (y0, y1) = extent_of(array[x].values), extent_of(array[y].values)
        except ExploreError:
            x0, x1, y0, y1 = 0.0, 1.0, 0.0, 1.0
        empty = hv.Image(
            np.zeros((1, 1)), bounds=(x0, y0, x1, y1), kdims=[x, y], vdims=[self.variable.value]
        )
        return self._styled(empty).opts(alpha=0)  # nothing drawn

    def _styled(self, image: hv.Image) -> hv.Image:
        # the plot is made from the first image the map returns (in a kernel: this blank one,
        # while the first view computes), and its tools are fixed then: both carry them
        return image.opts(
            width=self.width,
            height=self.height,
            colorbar=True,
            cmap="viridis",
            tools=["hover"],
            active_tools=["pan", "wheel_zoom"],  # zoom and pan without picking a tool first
            framewise=True,  # colours follow the values in view
        )

    def _failed(self, error: ExploreError) -> hv.Image:
        self.message.object, self.message.visible = str(error), True
        self.histogram_pipe.send(([], []))
        self.last = self.shown = None
        return self._blank()

    def _show(self, agg: Aggregate) -> hv.Image:
        y, x = self.plot_dims()
        self.message.visible = False
        lazy = isinstance(self.dataset[self.variable.value].data, da.Array)
        self.compute_line.object = (
            f"{describe_compute(self.client)} · {human_bytes(agg.nbytes)} touched"
            f"{'' if lazy else ' (in memory)'}"
        )
        mean = agg.mean
        finite = np.isfinite(mean)
        counts, edges = np.histogram(mean[finite], bins=40, weights=agg.counts[finite])
        self.histogram_pipe.send((edges, counts))
        xs, ys = pixel_centres(agg.x_range, mean.shape[1]), pixel_centres(agg.y_range, len(mean))
        image = hv.Image((xs, ys, mean), kdims=[x, y], vdims=[self.variable.value])
        self.shown = self._styled(image).opts(alpha=1)
        return self.shown

    def panel(self) -> pn.viewable.Viewable:
        """The app: controls, image and histogram, progress, messages and the compute line."""
        # the first view is computed before the layout's models exist, even in a kernel: every
        # part is created showing it (updates sent before the browser has the output are lost)
        if self.last is None and self.background.job is None:
            self._full_extent = False
            self.update(now=True)
        self.layout = pn.Column(
            pn.Row(self.variable, self.selector_row, pn.Column(self.progress, self.status)),
            *([self.choice.view] if self.choice is not None else []),
            self.message,
            pn.Row(pn.pane.HoloViews(self.image), pn.pane.HoloViews(self.histogram)),
            self.compute_line,
        )
        return self.layout


def explore(obj: Any, *, site: str | None = None, **kwargs: Any) -> pn.viewable.Viewable:
    """Show ``obj`` in a panel app; see :class:`Explorer`.

    ``obj`` is an xarray Dataset/DataArray, or a catalogue entry id (``"demo:survey/sky"``),
    opened from its replica at ``site`` (default: the site this kernel runs on; see
    :func:`continuum_widgets.catalogue.open_entry`). Bad input gives the app with a message (or,
    when there is nothing at all to show, a message pane) rather than an exception.
    """
    # inline: BokehJS and panel's bundles travel in the notebook, not from a CDN that a site's
    # compute nodes (and this project's test machines) cannot reach
    pn.extension(inline=True)
    try:
        if isinstance(obj, str):
            from continuum_widgets.catalogue import open_entry

            obj = open_entry(obj, site=site)
        return Explorer(obj, **kwargs).panel()
    except ExploreError as error:
        return pn.pane.Alert(str(error), alert_type="danger")
