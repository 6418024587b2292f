"""Scheduler preload of gateway clusters: the address out at once, the dashboard loaded later.

This file runs inside each cluster's scheduler (``dask scheduler --preload <staging>/<this
file>``, after ``dask_gateway.scheduler_preload``), in the cluster's software environment: it
imports nothing of this project, only the standard library and distributed.  The backend copies
it into the cluster's 0700 staging folder when it submits the scheduler's job
(:func:`continuum_hub.gateway.quickstart.setup_preload_file`).

What it changes, all to shorten a cluster's start (``bench/gateway_scale.py``):

* the first heartbeat goes to the gateway as soon as the scheduler listens, not 0.25 s later
  (``heartbeat_initial``): that heartbeat carries the address the cluster waits for;
* the scheduler asks for the workers submitted with it (``CONTINUUM_START_WORKERS``) from that
  first heartbeat on: dask-gateway would take a count of 0 as "stop the pending workers";
* the Bokeh dashboard (about a second of imports, more than the rest of the scheduler's start
  on a busy node) is imported in a thread once the first heartbeat is out, and then added to
  the scheduler's HTTP server, which already listens (``--no-dashboard``) at the address the
  gateway relays dashboards to.  Until then a dashboard page answers 404.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from typing import Any

#: the job environment's variable with the number of workers submitted with the scheduler
START_WORKERS_ENV = "CONTINUUM_START_WORKERS"

logger = logging.getLogger("distributed.scheduler")

_tasks: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak ones)


def start_workers(environ: Any = None) -> int:
    """Workers submitted with the scheduler, from the job's environment (0 if unset or bad)."""
    value = (os.environ if environ is None else environ).get(START_WORKERS_ENV, "0")
    try:
        return max(0, int(value))
    except ValueError:
        return 0


async def load_dashboard(scheduler: Any, first_heartbeat: asyncio.Event) -> None:
    """Import the dashboard in a thread after the first heartbeat, then serve it."""
    await first_heartbeat.wait()
    loop = asyncio.get_running_loop()
    try:
        dashboard = await loop.run_in_executor(
            None, importlib.import_module, "distributed.dashboard.scheduler"
        )
        # prefix "": as `dask scheduler` without --dashboard-prefix
        dashboard.connect(scheduler.http_application, scheduler.http_server, scheduler, "")
    except Exception:  # the cluster works without its dashboard
        logger.exception("Dashboard not started")
        return
    logger.info("Dashboard loaded")


def dask_setup(scheduler: Any) -> None:
    """Set up the gateway's scheduler service (started by the preload before this one)."""
    service = scheduler.services["gateway"]
    service.count = max(service.count, start_workers())
    # its heartbeat loop has not run yet (no await since the gateway's preload): no first wait
    service.heartbeat_initial = 0.0
    first_heartbeat = asyncio.Event()
    heartbeat = service.heartbeat

    async def heartbeat_then_note() -> None:
        await heartbeat()
        first_heartbeat.set()

    service.heartbeat = heartbeat_then_note
    if getattr(scheduler, "http_server", None) is not None:
        task = asyncio.ensure_future(load_dashboard(scheduler, first_heartbeat))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
