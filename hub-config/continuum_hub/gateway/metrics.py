"""The gateway's ``/metrics``: Dask clusters, workers, cores and GPUs by site.

dask-gateway-server exports no metrics of its own.  :class:`GatewayMetrics` adds
``GET <prefix>/metrics`` to the gateway's web application: the gauges of
:mod:`continuum_hub.metrics` (``continuum_gateway_*``), computed from the backend's active
clusters at each scrape, in Prometheus' text format, for a hub token with ``read:metrics``
(checked at the hub's ``/hub/api/user`` as the gateway's authenticator does: none or unknown →
401, without the scope → 403).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from aiohttp import ClientSession, web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from ..metrics import GATEWAY_CLUSTERS, GATEWAY_CORES, GATEWAY_GPUS, GATEWAY_WORKERS

#: the scope a token needs (as for the hub's ``/hub/metrics``)
METRICS_SCOPE = "read:metrics"


def set_gauges(clusters: Iterable[Any], sites: Iterable[str]) -> None:
    """Set the gauges from the active ``clusters`` (each with ``config.site``,
    ``active_workers()``); every site of ``sites`` appears, at 0 when it has no cluster."""
    totals: dict[str, list[int]] = {site: [0, 0, 0, 0] for site in sites}
    for cluster in clusters:
        config = cluster.config
        workers = len(cluster.active_workers())
        row = totals.setdefault(str(config.get("site", "")), [0, 0, 0, 0])
        row[0] += 1
        row[1] += workers
        row[2] += workers * int(config.get("worker_cores", 1))
        row[3] += workers * int(config.get("worker_gpus", 0))
    for gauge in (GATEWAY_CLUSTERS, GATEWAY_WORKERS, GATEWAY_CORES, GATEWAY_GPUS):
        gauge.clear()  # a site gone from the registry is dropped
    for site, (clusters_, workers, cores, gpus) in totals.items():
        GATEWAY_CLUSTERS.labels(site=site).set(clusters_)
        GATEWAY_WORKERS.labels(site=site).set(workers)
        GATEWAY_CORES.labels(site=site).set(cores)
        GATEWAY_GPUS.labels(site=site).set(gpus)


class GatewayMetrics:
    """``GET /metrics`` of the gateway (``backend``: the :class:`~.backend.SiteSlurmBackend`)."""

    def __init__(self, backend: Any, hub_api_url: str | None = None) -> None:
        self.backend = backend
        self.hub_api_url = hub_api_url or os.environ.get("JUPYTERHUB_API_URL", "")

    def install(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self.metrics)

    async def scopes(self, request: web.Request) -> set[str] | None:
        """The scopes of the request's hub token; ``None`` when it has none the hub knows."""
        header = request.headers.get("Authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() not in ("token", "bearer") or not token.strip():
            return None
        headers = {"Authorization": f"token {token.strip()}"}
        async with (
            ClientSession() as session,
            session.get(f"{self.hub_api_url}/user", headers=headers) as answer,
        ):
            if answer.status in (401, 403, 404):
                return None
            if answer.status >= 400:
                raise web.HTTPBadGateway(reason="the hub could not check the token")
            return set((await answer.json()).get("scopes", []))

    async def metrics(self, request: web.Request) -> web.Response:
        scopes = await self.scopes(request)
        if scopes is None:
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "token"})
        if METRICS_SCOPE not in scopes:
            raise web.HTTPForbidden(reason="this token has no read:metrics")
        set_gauges(self.backend.db.active_clusters(), self.backend.registry.sites)
        return web.Response(
            body=generate_latest(REGISTRY),
            headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
        )
