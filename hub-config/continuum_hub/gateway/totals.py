"""Per-user totals: the workers, cores and GPUs of all of a user's clusters together.

dask-gateway bounds each cluster (``cluster_max_workers``); :class:`~.options.Limits` adds
``max_total_workers``, ``max_total_cores`` and ``max_total_gpus`` over all of a user's active
clusters.  A cluster's *usage* is the worker count the gateway accepted for it (its ``count``)
times its workers' size; :func:`allowance` is how many workers one cluster may have while the
user's other clusters keep theirs.

The backend applies the allowance where dask-gateway applies ``cluster_max_workers``:

* creating a cluster is refused when not even its ``adaptive_minimum`` (at least one worker)
  fits beside the user's other clusters;
* ``scale`` and ``adapt`` requests are capped, and the client is told why the way dask-gateway
  tells of a capped request: the route's answer ``{"ok": false, "msg": ...}``, which
  ``dask_gateway.Gateway`` shows as a ``GatewayWarning``.  The backend only sees the message it
  forwards to the scheduler, so it leaves its note in :data:`NOTES` and :func:`notes_middleware`
  adds it to the route's answer;
* the scheduler's heartbeat (adaptive scaling asks for workers there) is capped too, so the
  totals hold even for requests that raced each other.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .options import Limits

#: notes of the current scale/adapt request for its answer (None: not in such a request)
NOTES: ContextVar[list[str] | None] = ContextVar("continuum_gateway_notes", default=None)


@dataclass(frozen=True)
class Usage:
    """Workers, and their cores and GPUs, of some clusters together."""

    workers: int = 0
    cores: int = 0
    gpus: int = 0


def usage(clusters: Iterable[tuple[int, Mapping[str, Any]]]) -> Usage:
    """The usage of ``(worker count, cluster config)`` pairs."""
    workers = cores = gpus = 0
    for count, config in clusters:
        workers += count
        cores += count * int(config.get("worker_cores", 1))
        gpus += count * int(config.get("worker_gpus", 0))
    return Usage(workers, cores, gpus)


def allowance(
    limits: Limits, others: Usage, worker_cores: int, worker_gpus: int
) -> tuple[int, str]:
    """Most workers of ``worker_cores``/``worker_gpus`` one cluster may have beside ``others``.

    Returns
    -------
    (int, str)
        The number (at least 0) and the name of the total that bounds it most.
    """
    bounds = [
        (limits.total("workers") - others.workers, "max_total_workers"),
        ((limits.total("cores") - others.cores) // max(worker_cores, 1), "max_total_cores"),
    ]
    if worker_gpus:
        bounds.append(((limits.total("gpus") - others.gpus) // worker_gpus, "max_total_gpus"))
    most, name = min(bounds)
    return max(most, 0), name


def explain(limits: Limits, others: Usage, most: int, name: str) -> str:
    """Why a cluster may have only ``most`` workers (for the user)."""
    used = {
        "max_total_workers": f"{others.workers} workers",
        "max_total_cores": f"{others.cores} cores",
        "max_total_gpus": f"{others.gpus} GPUs",
    }[name]
    return (
        f"{limits.why(name)}: your other clusters use {used}, so this cluster may have at most "
        f"{most} workers (scale another cluster down or shut it down for more)"
    )


def note(message: str) -> None:
    """Add ``message`` to the answer of the current scale/adapt request, if any."""
    notes = NOTES.get()
    if notes is not None:
        notes.append(message)


@web.middleware
async def notes_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Add the backend's notes to the answer of ``POST .../scale`` and ``.../adapt``."""
    if request.method != "POST" or not request.path.endswith(("/scale", "/adapt")):
        return await handler(request)
    notes: list[str] = []
    token = NOTES.set(notes)
    try:
        response = await handler(request)
    finally:
        NOTES.reset(token)
    if not notes or response.status != 200 or not isinstance(response, web.Response):
        return response
    try:
        body = json.loads(response.body)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return response
    message = " ".join(m for m in (body.get("msg"), *notes) if m)
    return web.json_response({"ok": False, "msg": message})
