"""Where ``explore`` computes: the notebook's Dask client, and how the widget names it.

:func:`current_client` finds the process's default :class:`distributed.Client` (the one a
notebook made last); :func:`describe_compute` is the widget's line naming the cluster, its
workers and the device they aggregate on (``aggregating on 2 GPU workers …``), or local threads.
:class:`ClusterChoice` is the widget's offer, when no client is active, to start a cluster on
the kernel's site through the user's Dask Gateway, or to run locally.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

import panel as pn

from continuum_widgets.analysis import array_module_name
from continuum_widgets.progress import running_loop


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


def gateway_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this server names a Dask Gateway (every Continuum Hub server does)."""
    env = os.environ if environ is None else environ
    if env.get("DASK_GATEWAY__ADDRESS"):
        return True
    import dask

    return bool(dask.config.get("gateway.address", None))


class ClusterChoice:
    """Where to compute, offered by ``explore`` when no Dask client is active.

    *Start a Dask cluster on <site>* asks the user's Dask Gateway for a cluster the way the
    Clusters panel's *New Dask cluster* does (the gateway's options, ``site`` preset to the
    kernel's), scales it and connects a client, which becomes the notebook's default; *Run
    locally* keeps computing on this server's threads. The gateway's answer is awaited in a
    thread while the kernel stays free; the choice is handed to ``on_client`` (a client or
    ``None``) on the event loop.

    Parameters
    ----------
    on_client
        Called with the new client, or ``None`` for local threads.
    gateway
        A ``dask_gateway.Gateway``; default: ``Gateway()`` from the server's environment.
    site
        The site to start on; default: the kernel's ``CONTINUUM_SITE``.
    wait_seconds
        How long to wait for the first worker before handing over the client anyway.
    """

    def __init__(
        self,
        on_client: Callable[[Any], None],
        *,
        gateway: Any = None,
        site: str | None = None,
        wait_seconds: float = 300.0,
    ) -> None:
        self.on_client = on_client
        self.gateway = gateway
        self.site = site if site is not None else os.environ.get("CONTINUUM_SITE", "")
        self.wait_seconds = wait_seconds
        self.cluster: Any = None
        where = f" on {self.site}" if self.site else ""
        self.workers = pn.widgets.IntInput(label="Workers", value=2, start=1, end=64, width=90)
        self.start_button = pn.widgets.Button(
            label=f"Start a Dask cluster{where}", button_type="primary"
        )
        self.local_button = pn.widgets.Button(label="Run locally")
        self.note = pn.pane.Str(
            "No Dask cluster is connected: views compute on this server's threads.",
            styles={"font-size": "12px"},
        )
        if gateway is None and not gateway_configured():
            self.start_button.disabled = True
            self.note.object += " (No Dask Gateway is configured for this server.)"
        self.start_button.on_click(lambda _event: self.start())
        self.local_button.on_click(lambda _event: self.run_locally())
        self.view = pn.Row(self.start_button, self.workers, self.local_button, self.note)

    def run_locally(self) -> None:
        """Compute on this server's threads; the control goes away."""
        self.view.visible = False
        self.on_client(None)

    def start(self) -> None:
        """Start the cluster (in a thread when an event loop runs here, else right away)."""
        self.start_button.disabled = self.local_button.disabled = True
        self.note.object = f"Starting a Dask cluster{' on ' + self.site if self.site else ''}…"
        if not running_loop():
            self._started(self.create())
            return
        work = asyncio.get_running_loop().run_in_executor(None, self.create)
        work.add_done_callback(lambda done: self._started(done.exception() or done.result()))

    def create(self) -> Any:
        """Ask the gateway for a cluster, scale it, wait for a worker; its client (or the
        exception that stopped it)."""
        try:
            gateway = self.gateway
            if gateway is None:
                from dask_gateway import Gateway

                gateway = Gateway()
            options = gateway.cluster_options()
            if self.site and "site" in options:
                options["site"] = self.site
            self.cluster = gateway.new_cluster(options, shutdown_on_close=True)
            self.cluster.scale(int(self.workers.value))
            client = self.cluster.get_client(set_as_default=True)
            try:
                client.wait_for_workers(1, timeout=self.wait_seconds)
            except TimeoutError:
                pass  # handed over anyway: explore says the cluster has no workers yet
            return client
        except Exception as error:  # the gateway's refusal, shown in the widget
            return error

    def _started(self, outcome: Any) -> None:
        if isinstance(outcome, BaseException):
            self.note.object = f"Could not start a Dask cluster: {outcome}"
            self.start_button.disabled = self.local_button.disabled = False
        else:
            self.view.visible = False
            self.on_client(outcome)
        # called back outside a browser event's handling: send the notebook's held changes
        pn.io.push_notebook(self.view)
