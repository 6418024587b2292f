"""The user's Dask Gateway clusters, as the *Clusters* lab panel shows and changes them.

:class:`ClusterManager` talks to the gateway's REST API (``/api/v1/clusters/…``) the way
``dask_gateway.Gateway`` does, from the same zero-configuration environment every server gets
(``DASK_GATEWAY__ADDRESS``, ``DASK_GATEWAY__PUBLIC_ADDRESS``, ``DASK_GATEWAY__AUTH__TYPE``) and
with the server's own ``JUPYTERHUB_API_TOKEN``: so it lists *all* the user's clusters, those made
in code (``GatewayCluster()``) as well as those made in the panel. Worker counts come from each
running scheduler's dashboard (``/clusters/<name>/json/identity.json`` through the gateway's
proxy); the REST API itself does not report them.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tornado.httpclient import HTTPRequest
from traitlets import Any as AnyTrait
from traitlets.config import LoggingConfigurable

from .remote import ServiceError, fetch_json

#: gateway cluster names: uuid hex, optionally prefixed by a namespace and a dot
CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: upper bound of a scale request (the gateway caps it further with ``cluster_max_workers``)
MAX_WORKERS = 10_000


class GatewayError(ServiceError):
    """A request about clusters failed; ``status`` is the HTTP status to answer with."""


@dataclasses.dataclass(frozen=True)
class GatewayEndpoint:
    """Where the gateway is and how to authenticate (the headers never get logged)."""

    address: str
    public_address: str
    headers: Mapping[str, str] = dataclasses.field(repr=False)


def gateway_endpoint(environ: Mapping[str, str], address: str = "") -> GatewayEndpoint:
    """The gateway of this server, from ``dask-gateway``'s environment configuration.

    Parameters
    ----------
    environ
        The server's environment.
    address
        An explicit address (``ContinuumLab.gateway_address``) overriding the environment's.

    Raises
    ------
    GatewayError
        503 when no gateway is configured or its authentication type is unsupported.
    """
    address = (address or environ.get("DASK_GATEWAY__ADDRESS", "")).strip().rstrip("/")
    if not address.startswith(("http://", "https://")):
        raise GatewayError(
            503, "No Dask Gateway is configured for this server (DASK_GATEWAY__ADDRESS is not set)."
        )
    public = environ.get("DASK_GATEWAY__PUBLIC_ADDRESS", "").strip().rstrip("/") or address
    token = environ.get("JUPYTERHUB_API_TOKEN", "")
    kind = environ.get("DASK_GATEWAY__AUTH__TYPE", "").strip() or (
        "jupyterhub" if token else "basic"
    )
    if kind == "jupyterhub":
        token = environ.get("DASK_GATEWAY__AUTH__KWARGS__API_TOKEN", "") or token
        if not token:
            raise GatewayError(503, "No JupyterHub API token for the Dask Gateway.")
        headers = {"Authorization": f"jupyterhub {token}"}
    elif kind == "basic":
        user = (
            environ.get("DASK_GATEWAY__AUTH__KWARGS__USERNAME")
            or environ.get("JUPYTERHUB_USER")
            or environ.get("USER", "")
        )
        password = environ.get("DASK_GATEWAY__AUTH__KWARGS__PASSWORD", "")
        basic = base64.b64encode(f"{user}:{password}".encode("latin1")).decode()
        headers = {"Authorization": f"Basic {basic}"}
    else:
        raise GatewayError(503, f"Dask Gateway authentication {kind!r} is not supported here.")
    return GatewayEndpoint(address=address, public_address=public, headers=headers)


def check_name(name: object) -> str:
    """A cluster name from a request, validated (400 otherwise)."""
    if not isinstance(name, str) or not CLUSTER_NAME.match(name):
        raise GatewayError(400, f"Not a cluster name: {name!r}")
    return name


def check_count(value: object, what: str) -> int:
    """A worker count from a request: a whole number in ``[0, MAX_WORKERS]`` (400 otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WORKERS:
        raise GatewayError(400, f"{what} must be a whole number from 0 to {MAX_WORKERS}")
    return value


def gateway_refusal(code: int, reason: str) -> tuple[int, str]:
    """The status and message answering the gateway's error ``code`` with ``reason``."""
    # the gateway's 422 means "invalid options/values": the user's request, hence 400
    status = {422: 400, 401: 403}.get(code, code if code < 500 else 502)
    return status, f"Dask Gateway: {reason}"


@dataclasses.dataclass(frozen=True)
class ClusterSummary:
    """One row of the panel: a cluster as the gateway and its scheduler report it."""

    name: str
    status: str
    start_time: datetime | None
    dashboard_link: str | None
    options: dict[str, Any]
    workers: int | None = None
    threads: int | None = None
    memory_bytes: int | None = None

    def to_json(self, now: datetime) -> dict[str, Any]:
        """JSON for the panel (``age_seconds`` relative to ``now``)."""
        data = dataclasses.asdict(self)
        start = self.start_time
        data["start_time"] = None if start is None else start.strftime("%Y-%m-%dT%H:%M:%SZ")
        data["age_seconds"] = None if start is None else max(0, int((now - start).total_seconds()))
        return data


def summary_from_gateway(name: str, data: Mapping[str, Any], public: str) -> ClusterSummary:
    """A :class:`ClusterSummary` from one entry of ``GET /api/v1/clusters/`` (keys checked).

    The entry's TLS credentials are dropped: the browser never needs them.
    """
    started = data.get("start_time")
    start = (
        datetime.fromtimestamp(started / 1000, UTC)
        if isinstance(started, int | float) and not isinstance(started, bool)
        else None
    )
    route = data.get("dashboard_route")
    options = data.get("options")
    return ClusterSummary(
        name=name,
        status=str(data.get("status", "UNKNOWN")).lower(),
        start_time=start,
        dashboard_link=f"{public}{route}" if isinstance(route, str) and route else None,
        options=dict(options) if isinstance(options, dict) else {},
    )


class ClusterManager(LoggingConfigurable):
    """Lists, creates, scales and stops the user's gateway clusters.

    Its parent is the :class:`~continuum_lab.config.ContinuumLab` whose ``gateway_address`` and
    ``gateway_timeout`` apply.
    """

    environ = AnyTrait(help="The server's environment (a mapping); os.environ unless tests set it.")

    def _environ_default(self) -> Mapping[str, str]:
        return dict(os.environ)

    @property
    def endpoint(self) -> GatewayEndpoint:
        """The gateway this server uses (raises :class:`GatewayError` when there is none)."""
        return gateway_endpoint(self.environ, str(getattr(self.parent, "gateway_address", "")))

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        endpoint = self.endpoint
        timeout = float(getattr(self.parent, "gateway_timeout", 10.0))
        request = HTTPRequest(
            endpoint.address + path,
            method=method,
            # the dashboard routes want the same credentials (our gateway checks the owner)
            headers={**endpoint.headers, "Accept": "application/json"},
            body=None if body is None else json.dumps(body),
            connect_timeout=timeout,
            request_timeout=timeout,
            follow_redirects=False,
        )
        return await fetch_json(
            request,
            what=f"The Dask Gateway at {endpoint.address}",
            key="error",
            refusal=gateway_refusal,
            error=GatewayError,
        )

    async def _scheduler_load(self, summary: ClusterSummary) -> ClusterSummary:
        """The summary with its workers, threads and memory from the scheduler's dashboard."""
        if summary.status != "running":
            return summary
        try:
            identity = await self._call(
                "GET", f"/clusters/{quote(summary.name)}/json/identity.json"
            )
        except GatewayError as exc:
            self.log.debug("continuum_lab: no worker count for %s: %s", summary.name, exc)
            return summary
        if not isinstance(identity, dict) or not isinstance(identity.get("workers"), dict):
            return summary
        workers = [w for w in identity["workers"].values() if isinstance(w, dict)]
        return dataclasses.replace(
            summary,
            workers=len(workers),
            threads=sum(int(w.get("nthreads") or 0) for w in workers),
            memory_bytes=sum(int(w.get("memory_limit") or 0) for w in workers),
        )

    async def list_clusters(self) -> list[ClusterSummary]:
        """All the user's pending and running clusters, oldest first."""
        listing = await self._call("GET", "/api/v1/clusters/")
        if not isinstance(listing, dict):
            raise GatewayError(502, "The Dask Gateway's cluster list is not a JSON object")
        public = self.endpoint.public_address
        summaries = [
            summary_from_gateway(name, data, public)
            for name, data in listing.items()
            if isinstance(data, dict)
        ]
        loaded = await asyncio.gather(*(self._scheduler_load(s) for s in summaries))
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(loaded, key=lambda s: (s.start_time or epoch, s.name))

    async def options(self) -> list[dict[str, Any]]:
        """The gateway's cluster options for this user (its ``cluster_options`` specification)."""
        answer = await self._call("GET", "/api/v1/options")
        spec = answer.get("cluster_options") if isinstance(answer, dict) else None
        return spec if isinstance(spec, list) else []

    async def create(self, options: object = None) -> str:
        """Start a cluster with ``options`` (the gateway validates their values); its name."""
        if options is None:
            options = {}
        if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
            raise GatewayError(400, "cluster_options must be a JSON object")
        answer = await self._call("POST", "/api/v1/clusters/", {"cluster_options": options})
        if not isinstance(answer, dict) or not isinstance(answer.get("name"), str):
            raise GatewayError(502, "The Dask Gateway did not name the new cluster")
        return answer["name"]

    async def scale(self, name: object, count: object) -> str | None:
        """Ask for ``count`` workers; the gateway's note if it capped the request."""
        path = f"/api/v1/clusters/{quote(check_name(name))}/scale"
        answer = await self._call("POST", path, {"count": check_count(count, "count")})
        return answer.get("msg") if isinstance(answer, dict) else None

    async def adapt(self, name: object, minimum: object, maximum: object) -> str | None:
        """Scale adaptively between ``minimum`` and ``maximum`` workers."""
        low, high = check_count(minimum, "minimum"), check_count(maximum, "maximum")
        if low > high:
            raise GatewayError(400, "minimum must not exceed maximum")
        path = f"/api/v1/clusters/{quote(check_name(name))}/adapt"
        answer = await self._call("POST", path, {"minimum": low, "maximum": high, "active": True})
        return answer.get("msg") if isinstance(answer, dict) else None

    async def stop(self, name: object) -> None:
        """Shut the cluster down (scheduler and workers)."""
        await self._call("DELETE", f"/api/v1/clusters/{quote(check_name(name))}")

    @staticmethod
    def now() -> datetime:
        """The current time (a method so that tests can pin it)."""
        return datetime.now(UTC)
