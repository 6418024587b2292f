"""``explore(obj)``: look at an xarray dataset larger than the server's memory, in a panel app.

The app shows a variable picker, a selector for each dimension that is not plotted, an image of
the chosen 2-D slice rasterised onto the screen's pixels (:mod:`continuum_widgets.aggregate`:
the binning runs on the current Dask client's workers — cupy on GPU workers — or on local threads,
and only the image comes back), a histogram of the values in view linked to it, zoom and pan that
re-aggregate at the new extent, a progress indicator while dask computes, and a line naming the
cluster, its workers, the device they aggregate on and the bytes the view touched.

Typical use in a notebook::

    import xarray as xr
    from continuum_widgets import explore
    explore(xr.open_zarr("/data/survey.zarr"))      # lazy; computed on the current client

Bad input (no plottable 2-D variable, a non-monotonic coordinate, too many categories, a slice
with only NaN, a lazy view above the local bound with no cluster) gives a message in the widget,
never an exception in the kernel's face or a load of the whole array.
"""

from __future__ import annotations

import os
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
    aggregate_lazy,
    default_local_limit,
    human_bytes,
)
from continuum_widgets.analysis import array_module_name

#: a plotted axis labelled by more categories than this is refused (unreadable, and costly)
MAX_AXIS_CATEGORIES = 10_000
#: a non-plotted dimension with at most this many labels gets a drop-down, else a slider
MAX_SELECT_OPTIONS = 200


def as_dataset(obj: Any) -> xr.Dataset:
    """``obj`` as a Dataset; :class:`ExploreError` for anything but a Dataset or DataArray."""
    if isinstance(obj, xr.Dataset):
        return obj
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=obj.name if obj.name is not None else "values")
    raise ExploreError(f"explore needs an xarray Dataset or DataArray, not {type(obj).__name__}")


def plottable_variables(dataset: xr.Dataset) -> list[str]:
    """Names of the real-valued variables with at least two dimensions of length ≥ 2."""
    names = [
        str(name)
        for name, var in dataset.data_vars.items()
        if (np.issubdtype(var.dtype, np.number) or var.dtype == bool)
        and not np.issubdtype(var.dtype, np.complexfloating)
        and sum(size >= 2 for size in var.shape) >= 2
    ]
    if not names:
        described = ", ".join(f"{k}{tuple(v.dims)}" for k, v in dataset.data_vars.items())
        raise ExploreError(
            "nothing to show: no numeric variable has two dimensions of length ≥ 2 "
            f"({described or 'the dataset has no variables'})"
        )
    return names


def numeric_axis(array: xr.DataArray, dim: str) -> xr.DataArray:
    """``array`` with a numeric coordinate on ``dim``: positions where it has none or labels."""
    if dim not in array.coords:
        return array.assign_coords({dim: np.arange(array.sizes[dim])})
    coord = array[dim]
    if np.issubdtype(coord.dtype, np.number) and not np.issubdtype(coord.dtype, np.complexfloating):
        return array
    if array.sizes[dim] > MAX_AXIS_CATEGORIES:
        raise ExploreError(
            f"the axis {dim!r} has {array.sizes[dim]:,} categories, too many to label an axis "
            f"(at most {MAX_AXIS_CATEGORIES:,}): plot it by position (obj.drop_vars({dim!r})) "
            "or choose other dimensions with x= and y="
        )
    return array.assign_coords({dim: np.arange(array.sizes[dim])})


def current_client() -> Any:
    """The default :class:`distributed.Client` of this process, or ``None``."""
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def describe_compute(client: Any) -> str:
    """Where aggregation runs: the cluster, its workers and their device; or local threads."""
    if client is None:
        return f"aggregating locally on {os.cpu_count()} threads ({array_module_name()})"
    try:
        devices = client.run(array_module_name)
    except Exception as error:  # a cluster that went away must not break the widget
        return f"cluster {client.scheduler.address} unreachable: {error}"
    gpus = sum(name == "cupy" for name in devices.values())
    cluster = getattr(client, "cluster", None)
    name = getattr(cluster, "name", None) or client.scheduler.address
    device = f"{gpus} GPU workers" if gpus else f"{len(devices)} CPU workers (numpy)"
    return f"aggregating on {device} of cluster {name} · {len(devices)} workers"


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
    ) -> None:
        hv.renderer("bokeh")  # loads holoviews' bokeh plotting without notebook output
        self.dataset = as_dataset(obj)
        self.variables = plottable_variables(self.dataset)
        self.x, self.y, self.width, self.height = x, y, width, height
        self.client = client if client is not None else current_client()
        self.local_limit = local_limit if local_limit is not None else default_local_limit()
        self.last: Aggregate | None = None
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
        self.range_stream = hv.streams.RangeXY()
        # a changed selector must re-render even when the extent did not change
        self.refresh_stream = hv.streams.Counter()
        self.histogram_pipe = hv.streams.Pipe(data=([], []))
        self._full_extent = True
        self.image = hv.DynamicMap(self._render, streams=[self.range_stream, self.refresh_stream])
        self.histogram = hv.DynamicMap(
            lambda data: hv.Histogram(data, kdims=["value"], vdims=["count"]).opts(
                width=300, height=self.height, title="values in view (pixel means)", framewise=True
            ),
            streams=[self.histogram_pipe],
        )
        self.variable.param.watch(self._on_variable, "value")
        self._build_selectors()

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
        """Re-aggregate the current view (after a change of variable or selector)."""
        self.refresh_stream.event()

    # -- aggregation -----------------------------------------------------------------------

    def compute(self, x_range: Any = None, y_range: Any = None) -> Aggregate:
        """Aggregate the current slice over an extent (default: all of it); raises ExploreError."""
        array = self.current_slice()
        y, x = array.dims
        if x_range is None or y_range is None:
            x_range, y_range = _extent(array[x].values), _extent(array[y].values)
        key = (self.variable.value, *(w.value for w in self.selectors.values()))
        last = self.last
        if last is not None and self._last_key == key and _same(last, x_range, y_range):
            return last  # the plot reporting the extent it was just drawn at: nothing new
        graph, nbytes = aggregate_lazy(
            array,
            x_range,
            y_range,
            self.width,
            self.height,
            local_limit=None if self.client is not None else self.local_limit,
        )
        if self.client is not None and not self.client.scheduler_info().get("workers"):
            # a result would wait for a worker forever, and the kernel with it
            raise ExploreError(
                "the Dask cluster has no workers yet: scale it (cluster.scale(2), or the "
                "Dask clusters panel), then move the view or a selector"
            )
        self.progress.value, self.progress.active = -1, True
        self.status.object = f"computing {human_bytes(nbytes)}…"
        started = time.perf_counter()
        try:
            if self.client is not None:
                result = self.client.compute(graph).result()
            else:
                result = graph.compute(scheduler="threads")
        finally:
            self.progress.value, self.progress.active = 0, False
        elapsed = time.perf_counter() - started
        self.status.object = f"ready: {human_bytes(nbytes)} in {elapsed:.2f} s"
        self._last_key = key
        agg = Aggregate(
            counts=np.rint(result[0]).astype(np.int64),
            sums=result[1],
            x_range=(float(x_range[0]), float(x_range[1])),
            y_range=(float(y_range[0]), float(y_range[1])),
            nbytes=nbytes,
        )
        if not agg.counts.any():
            raise ExploreError(
                f"no finite value of {self.variable.value!r} in this view: the slice is all NaN "
                "here; move a selector or zoom out"
            )
        return agg

    def _render(self, x_range: Any = None, y_range: Any = None, counter: int = 0) -> hv.Image:
        if self._full_extent:
            x_range = y_range = None
            self._full_extent = False
        y, x = self.plot_dims()
        try:
            agg = self.compute(x_range, y_range)
        except ExploreError as error:
            self.message.object, self.message.visible = str(error), True
            self.histogram_pipe.send(([], []))
            self.last = None
            # an empty image over the whole slice, so the plot keeps asking for the same extent
            try:
                array = self.current_slice()
                (x0, x1), (y0, y1) = _extent(array[x].values), _extent(array[y].values)
            except ExploreError:
                x0, x1, y0, y1 = 0.0, 1.0, 0.0, 1.0
            empty = hv.Image(np.zeros((1, 1)), bounds=(x0, y0, x1, y1), kdims=[x, y])
            return empty.opts(alpha=0)  # nothing drawn
        self.last = agg
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
        return hv.Image(
            (_centres(agg.x_range, mean.shape[1]), _centres(agg.y_range, mean.shape[0]), mean),
            kdims=[x, y],
            vdims=[self.variable.value],
        ).opts(
            width=self.width,
            height=self.height,
            colorbar=True,
            cmap="viridis",
            tools=["hover"],
            active_tools=["pan", "wheel_zoom"],  # zoom and pan without picking a tool first
            framewise=True,  # colours follow the values in view
        )

    def panel(self) -> pn.viewable.Viewable:
        """The app: controls, image and histogram, progress, messages and the compute line."""
        # the first view is computed before the layout's models exist, so every part (status,
        # histogram, message) is created showing it rather than updated in the middle of display
        self.image[()]
        return pn.Column(
            pn.Row(self.variable, self.selector_row, pn.Column(self.progress, self.status)),
            self.message,
            pn.Row(pn.pane.HoloViews(self.image), pn.pane.HoloViews(self.histogram)),
            self.compute_line,
        )


def _same(agg: Aggregate, x_range: Any, y_range: Any) -> bool:
    """Whether an extent is the aggregate's own, up to rounding in the browser's round trip."""
    tolerance = 1e-9 * max(agg.x_range[1] - agg.x_range[0], agg.y_range[1] - agg.y_range[0], 1)
    requested = (*map(float, x_range), *map(float, y_range))
    return np.allclose(requested, (*agg.x_range, *agg.y_range), rtol=0, atol=tolerance)


def _extent(coord: np.ndarray) -> tuple[float, float]:
    values = np.asarray(coord, dtype=np.float64)
    return float(values.min()), float(values.max())


def _centres(extent: tuple[float, float], pixels: int) -> np.ndarray:
    step = (extent[1] - extent[0]) / pixels
    return extent[0] + step * (np.arange(pixels) + 0.5)


def explore(obj: Any, **kwargs: Any) -> pn.viewable.Viewable:
    """Show ``obj`` (an xarray Dataset/DataArray) in a panel app; see :class:`Explorer`.

    Bad input gives the app with a message (or, when there is nothing at all to show, a message
    pane) rather than an exception.
    """
    # inline: BokehJS and panel's bundles travel in the notebook, not from a CDN that a site's
    # compute nodes (and this project's test machines) cannot reach
    pn.extension(inline=True)
    try:
        return Explorer(obj, **kwargs).panel()
    except ExploreError as error:
        return pn.pane.Alert(str(error), alert_type="danger")
