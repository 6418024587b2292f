"""Notebook widgets for Dask Gateway clusters: the options form, scaling, dashboard, shutdown.

Inside Continuum Hub every server's environment names the hub's gateway, so nothing needs
configuring::

    from continuum_widgets import ClusterLauncher
    launcher = ClusterLauncher()        # the gateway's options for you, and a "Create" button
    launcher                            # display it; launcher.cluster is the GatewayCluster

    from dask_gateway import GatewayCluster
    from continuum_widgets import ClusterControls
    cluster = GatewayCluster()
    ClusterControls(cluster)            # scale / adapt / dashboard / shut down

dask-gateway's own ``GatewayCluster`` widget shows scaling only; these add the options form,
the dashboard link and shutdown, and report failures (a capped scale request, a refused
option) in the widget instead of the kernel's log.
"""

from __future__ import annotations

import html
import warnings
from typing import Any

import ipywidgets as w
from dask.utils import format_bytes
from tornado.ioloop import PeriodicCallback


def cluster_status(cluster: Any) -> str:
    """One line about a cluster: state, workers, cores and memory (from its scheduler)."""
    workers = (getattr(cluster, "scheduler_info", None) or {}).get("workers") or {}
    threads = sum(int(v.get("nthreads") or 0) for v in workers.values())
    memory = sum(int(v.get("memory_limit") or 0) for v in workers.values())
    count = len(workers)
    return (
        f"{cluster.status}: {count} worker{'s' if count != 1 else ''}, "
        f"{threads} core{'s' if threads != 1 else ''}, {format_bytes(memory)}"
    )


class ClusterControls(w.VBox):
    """Scale, adapt, open the dashboard of and shut down one ``GatewayCluster``.

    Parameters
    ----------
    cluster
        A running ``dask_gateway.GatewayCluster``.
    refresh_seconds
        Seconds between updates of the status line (on the cluster's event loop); 0: never,
        call :meth:`refresh` yourself.
    """

    def __init__(self, cluster: Any, refresh_seconds: float = 2.0, **kwargs: Any) -> None:
        self.cluster = cluster
        self.status = w.HTML()
        self.message = w.HTML()
        self.workers = w.BoundedIntText(0, min=0, max=10_000, description="Workers")
        self.scale_button = w.Button(description="Scale", icon="arrows-v")
        self.minimum = w.BoundedIntText(0, min=0, max=10_000, description="Minimum")
        self.maximum = w.BoundedIntText(4, min=0, max=10_000, description="Maximum")
        self.adapt_button = w.Button(description="Adapt", icon="magic")
        self.dashboard = w.HTML()
        self.shutdown_button = w.Button(
            description="Shut down", button_style="danger", icon="power-off"
        )
        self.scale_button.on_click(lambda _: self._try(self.scale, self.workers.value))
        self.adapt_button.on_click(
            lambda _: self._try(self.adapt, self.minimum.value, self.maximum.value)
        )
        self.shutdown_button.on_click(lambda _: self._try(self.shutdown))
        scaling = w.Tab(
            children=[
                w.HBox([self.workers, self.scale_button]),
                w.HBox([self.minimum, self.maximum, self.adapt_button]),
            ]
        )
        scaling.set_title(0, "Manual")
        scaling.set_title(1, "Adaptive")
        title = w.HTML(f"<b>Dask cluster</b> <code>{html.escape(str(cluster.name))}</code>")
        super().__init__(
            [
                title,
                self.status,
                scaling,
                w.HBox([self.dashboard, self.shutdown_button]),
                self.message,
            ],
            **kwargs,
        )
        self._timer: PeriodicCallback | None = None
        if refresh_seconds > 0:
            self._timer = PeriodicCallback(self.refresh, refresh_seconds * 1000)
            cluster.loop.add_callback(self._timer.start)
        self.refresh()

    def refresh(self) -> None:
        """Update the status line and the dashboard link from the cluster."""
        self.status.value = html.escape(cluster_status(self.cluster))
        link = self.cluster.dashboard_link
        self.dashboard.value = (
            f'<a href="{html.escape(link)}" target="_blank" rel="noopener">Dashboard</a>'
            if link and self.cluster.status == "running"
            else ""
        )
        if self.cluster.status in ("closing", "closed"):
            self._stop_timer()
            for control in (self.scale_button, self.adapt_button, self.shutdown_button):
                control.disabled = True

    def scale(self, count: int) -> None:
        """Ask the gateway for ``count`` workers (it may cap the request, and says so)."""
        with warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always")
            self.cluster.scale(count)
        self._say(" ".join(str(n.message) for n in notes) or f"Asked for {count} workers.")

    def adapt(self, minimum: int, maximum: int) -> None:
        """Scale adaptively between ``minimum`` and ``maximum`` workers."""
        if minimum > maximum:
            raise ValueError("the minimum must not exceed the maximum")
        with warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always")
            self.cluster.adapt(minimum=minimum, maximum=maximum)
        said = " ".join(str(n.message) for n in notes)
        self._say(said or f"Adapting between {minimum} and {maximum} workers.")

    def shutdown(self) -> None:
        """Shut the cluster down (scheduler and workers)."""
        self._stop_timer()
        self.cluster.shutdown()
        self._say("Shut down.")
        self.refresh()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            timer, self._timer = self._timer, None
            try:
                self.cluster.loop.add_callback(timer.stop)
            except RuntimeError:  # the cluster's loop is already gone
                pass

    def _say(self, text: str, error: bool = False) -> None:
        colour = "var(--jp-error-color1, red)" if error else "inherit"
        self.message.value = f'<span style="color: {colour}">{html.escape(text)}</span>'

    def _try(self, action: Any, *args: Any) -> None:
        try:
            action(*args)
        except Exception as exc:  # shown to the user in the widget, not lost in a log
            self._say(f"{type(exc).__name__}: {exc}", error=True)
        self.refresh()


class ClusterLauncher(w.VBox):
    """The gateway's cluster options as a form, and a button that creates the cluster.

    Parameters
    ----------
    gateway
        A ``dask_gateway.Gateway``; by default ``Gateway()``, configured by the environment.
    """

    def __init__(self, gateway: Any = None, **kwargs: Any) -> None:
        if gateway is None:
            from dask_gateway import Gateway

            gateway = Gateway()
        self.gateway = gateway
        self.options = gateway.cluster_options()
        self.cluster: Any = None
        self.controls: ClusterControls | None = None
        self.message = w.HTML()
        self.create_button = w.Button(description="Create cluster", button_style="primary")
        self.create_button.on_click(lambda _: self.create())
        form = self.options._widget()  # dask-gateway's form, bound to self.options
        super().__init__(
            [w.HTML("<b>New Dask cluster</b>"), form, self.create_button, self.message], **kwargs
        )

    def create(self) -> Any:
        """Create a cluster with the form's options and show its controls; the cluster."""
        self.create_button.disabled = True
        self.message.value = "Starting…"
        try:
            self.cluster = self.gateway.new_cluster(cluster_options=self.options)
        except Exception as exc:
            self.message.value = html.escape(f"Could not create the cluster: {exc}")
            self.create_button.disabled = False
            return None
        self.message.value = ""
        self.controls = ClusterControls(self.cluster)
        self.children = (*self.children, self.controls)
        return self.cluster
