"""Hub API handlers for servers running as batch jobs; each answers a server's own token only.

``POST /hub/api/batchspawner`` — the job's port report, made safe.  A server job picks its port
on the compute node and reports it to the hub.  batchspawner 1.3 registers, as a side effect of
``import batchspawner``, a handler at this route that sets *any* spawner attribute named in the
posted body (``cmd``, ``exec_prefix``, …): a user with their server's token could make the hub
run anything as them, or worse.  :class:`PortReportHandler` accepts exactly
``{"port": <1–65535>}``, only with the token of the server being started, and only while that
server is starting.

``GET /hub/api/continuum/estimate`` — when a choice of the spawn form would start (the form
asks as the user changes it), including ``site=soonest`` and the data to be read
(``data_sites``, ``datasets``, ``transfer``), with the reason for the choice.

``GET /hub/api/continuum/job`` — what the hub knows of the server's job (site, partition, job
id, node, resources, start and end time, remaining walltime), for the session panel in the Lab.

:func:`install_api_handlers` (called from the hub configuration) puts both in place, replacing
batchspawner's handler.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from typing import Any

from jupyterhub import apihandlers
from jupyterhub.apihandlers import APIHandler
from tornado import web

from .metrics import PORT_REFUSAL_REASONS, PORT_REPORTS_REFUSED
from .options import FIELDS, OptionsError
from .phases import LAUNCHER_AGE_HEADER

PORT_ROUTE = r"/api/batchspawner"
JOB_ROUTE = r"/api/continuum/job"
ESTIMATE_ROUTE = r"/api/continuum/estimate"
ROUTES = (PORT_ROUTE, JOB_ROUTE, ESTIMATE_ROUTE)
#: estimate arguments that may be repeated
LIST_FIELDS = ("data_sites", "datasets")


def own_spawner(spawners: Iterable[Any], token: str) -> Any | None:
    """The spawner whose server's API token is ``token`` (compared in constant time)."""
    for spawner in spawners:
        if spawner.api_token and hmac.compare_digest(spawner.api_token.encode(), token.encode()):
            return spawner
    return None


def accept_port_report(body: Any, token: str, spawners: Iterable[Any]) -> tuple[Any, int]:
    """Check a port report; return the reporting spawner and the port.

    Parameters
    ----------
    body
        The parsed JSON body.
    token
        The API token the request was made with.
    spawners
        The authenticated user's spawners.

    Raises
    ------
    tornado.web.HTTPError
        400 for any body but ``{"port": <1-65535>}``, 403 unless ``token`` is one of
        ``spawners``' own API token, 409 unless that server is starting.
    """
    if not isinstance(body, dict) or set(body) != {"port"}:
        raise web.HTTPError(400, 'the body must be exactly {"port": <1-65535>}')
    port = body["port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise web.HTTPError(400, "port must be an integer between 1 and 65535")
    spawner = own_spawner(spawners, token)
    if spawner is None:
        raise web.HTTPError(403, "only a server's own token may report its port")
    # a job the scheduler requeued runs again and reports its new port
    if spawner.pending != "spawn" and not getattr(spawner, "requeued", False):
        raise web.HTTPError(409, "the server is not starting; its port cannot change")
    return spawner, port


class _OwnServerHandler(APIHandler):
    """Base: the request's token must be the API token of one of the user's servers."""

    def token_spawner(self) -> Any:
        # services and other non-user identities have no servers
        spawners = getattr(self.current_user, "spawners", None)
        spawner = own_spawner(spawners.values(), self.get_auth_token() or "") if spawners else None
        if spawner is None:
            raise web.HTTPError(403, "only a server's own token may use this endpoint")
        return spawner


class PortReportHandler(APIHandler):
    """``POST /hub/api/batchspawner``: a starting server reports its port, and nothing else."""

    @web.authenticated
    async def post(self) -> None:
        user = self.current_user
        body = self.get_json_body()
        spawners = getattr(user, "spawners", None)
        if spawners is None:
            PORT_REPORTS_REFUSED.labels(reason="not_own_token").inc()
            raise web.HTTPError(403, "only a server's own token may report its port")
        try:
            spawner, port = accept_port_report(body, self.get_auth_token() or "", spawners.values())
        except web.HTTPError as exc:
            reason = PORT_REFUSAL_REASONS.get(exc.status_code, "other")
            PORT_REPORTS_REFUSED.labels(reason=reason).inc()
            fields = sorted(str(k)[:40] for k in body) if isinstance(body, dict) else []
            self.log.warning(
                "Refused port report of %s (fields %s): %s", user.name, fields, exc.log_message
            )
            raise
        spawner.port = port
        launcher_reported = getattr(spawner, "launcher_reported", None)
        if launcher_reported is not None:  # the spawn's phases (continuum_spawners.phases)
            launcher_reported(self.request.headers.get(LAUNCHER_AGE_HEADER))
        self.log.info("Server %s reported port %d", spawner._log_name, port)
        if getattr(spawner, "requeued", False) and spawner.server is not None:
            # the rerun of a requeued job: point the proxy at where the server is now
            spawner.requeued = False
            await spawner.query_job_status()  # a fresh status names the node it runs on now
            spawner.server.ip = spawner.state_gethost()
            spawner.server.port = port
            self.db.commit()
            await self.proxy.add_user(user, spawner.name)
            self.log.info(
                "Server %s moved to %s:%d after a requeue",
                spawner._log_name,
                spawner.server.ip,
                port,
            )
        self.set_status(201)
        self.finish(json.dumps({"message": "port recorded"}))


class JobInfoHandler(_OwnServerHandler):
    """``GET /hub/api/continuum/job``: the calling server's job, as the hub sees it."""

    @web.authenticated
    def get(self) -> None:
        spawner = self.token_spawner()
        job_info = getattr(spawner, "job_info", None)
        if job_info is None:
            raise web.HTTPError(404, "this server is not a batch job")
        self.finish(json.dumps(job_info()))


class EstimateHandler(APIHandler):
    """``GET /hub/api/continuum/estimate?site=…&partition=…&cores=…``: when would it start?

    For the signed-in user, with the same validation as a spawn (400/403 with a message);
    ``site=soonest`` ranks every fitting partition of the user's sites.
    """

    @web.authenticated
    async def get(self) -> None:
        spawner = getattr(self.current_user, "spawner", None)
        estimate = getattr(spawner, "estimate_options", None)
        if estimate is None:
            raise web.HTTPError(404, "this hub's servers are not batch jobs")
        options: dict[str, Any] = {
            key: self.get_argument(key)
            for key in FIELDS
            if key not in LIST_FIELDS and self.get_argument(key, None) is not None
        }
        # repeated arguments (data_sites=a&data_sites=b, or data_sites=a,b)
        options.update(
            {key: self.get_arguments(key) for key in LIST_FIELDS if key in self.request.arguments}
        )
        try:
            model = await estimate(options)
        except OptionsError as exc:
            raise web.HTTPError(exc.status, str(exc)) from None
        self.finish(json.dumps(model))


def install_api_handlers() -> None:
    """Install our handlers, replacing batchspawner's port handler (idempotent).

    Call from the hub configuration, before the hub builds its routes.
    """
    import batchspawner  # noqa: F401 - its import registers the handler we replace

    handlers = apihandlers.default_handlers
    handlers[:] = [h for h in handlers if h[0] not in ROUTES]
    handlers.extend(
        [
            (PORT_ROUTE, PortReportHandler),
            (JOB_ROUTE, JobInfoHandler),
            (ESTIMATE_ROUTE, EstimateHandler),
        ]
    )
    for reason in PORT_REFUSAL_REASONS.values():  # at 0: "none refused" rather than no series
        PORT_REPORTS_REFUSED.labels(reason=reason)


def is_installed() -> bool:
    """Whether the hub's API routes use our handler for the port report (and only ours)."""
    routes = [h for h in apihandlers.default_handlers if h[0] == PORT_ROUTE]
    return len(routes) == 1 and routes[0][1] is PortReportHandler
