"""HTTP routes of ``continuum_lab``: thin, authenticated handlers over the managers.

Every route lives below ``{base_url}continuum/``; every method requires the user's login
(``tests/lab/test_server_extension.py`` walks :data:`ROUTES` without credentials and
expects 403).

This module holds the session, cluster and usage routes and :data:`ROUTES`, the whole table:
its own rows and those of :mod:`.workflow_handlers` (batch runs), :mod:`.catalogue_handlers`
and :mod:`.workshop_handlers`.  The handlers' base classes are in :mod:`.handler_base`.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.utils import url_path_join
from tornado import web

from . import catalogue_handlers, workflow_handlers, workshop_handlers
from .clusters import GatewayError
from .handler_base import ContinuumHandler, ServiceHandler
from .remote import ServiceError

__all__ = ["NAMESPACE", "ROUTES", "ContinuumHandler", "ServiceHandler", "setup_handlers"]

NAMESPACE = "continuum"


class SessionHandler(ContinuumHandler):
    """``GET /continuum/session``: the job behind this server and the warning settings."""

    @web.authenticated
    async def get(self) -> None:
        self.polled()
        info = await self.job_info.current()
        body: dict[str, Any] = info.to_json(self.job_info.now())
        body["settings"] = self.lab.frontend_settings()
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))


class ClustersHandler(ContinuumHandler):
    """``GET /continuum/clusters``: all the user's gateway clusters; ``POST``: start one."""

    @web.authenticated
    async def get(self) -> None:
        self.polled()
        try:
            clusters = await self.clusters.list_clusters()
        except GatewayError as error:
            self.refuse(error)
            return
        now = self.clusters.now()
        self.reply(
            {
                "clusters": [c.to_json(now) for c in clusters],
                "refresh_seconds": self.lab.clusters_refresh_seconds,
            }
        )

    @web.authenticated
    async def post(self) -> None:
        try:
            name = await self.clusters.create(self.json_object().get("cluster_options"))
        except GatewayError as error:
            self.refuse(error)
            return
        self.reply({"name": name}, status=201)


class ClusterOptionsHandler(ContinuumHandler):
    """``GET /continuum/clusters/options``: the gateway's cluster options for this user."""

    @web.authenticated
    async def get(self) -> None:
        try:
            self.reply({"cluster_options": await self.clusters.options()})
        except GatewayError as error:
            self.refuse(error)


class ClusterScaleHandler(ContinuumHandler):
    """``POST /continuum/clusters/scale`` ``{"name", "count"}``: ask for that many workers."""

    @web.authenticated
    async def post(self) -> None:
        try:
            body = self.json_object()
            note = await self.clusters.scale(body.get("name"), body.get("count"))
        except GatewayError as error:
            self.refuse(error)
            return
        self.reply({"name": body["name"], "count": body["count"], "message": note})


class ClusterAdaptHandler(ContinuumHandler):
    """``POST /continuum/clusters/adapt`` ``{"name", "minimum", "maximum"}``: adaptive scaling."""

    @web.authenticated
    async def post(self) -> None:
        try:
            body = self.json_object()
            note = await self.clusters.adapt(
                body.get("name"), body.get("minimum", 0), body.get("maximum")
            )
        except GatewayError as error:
            self.refuse(error)
            return
        self.reply({"name": body["name"], "message": note})


class ClusterStopHandler(ContinuumHandler):
    """``POST /continuum/clusters/stop`` ``{"name"}``: shut the cluster down."""

    @web.authenticated
    async def post(self) -> None:
        try:
            body = self.json_object()
            await self.clusters.stop(body.get("name"))
        except GatewayError as error:
            self.refuse(error)
            return
        self.reply({"name": body["name"], "stopped": True})


class UsageHandler(ContinuumHandler):
    """``GET /continuum/usage?from=…&to=…&site=…&kind=…&format=csv``: the user's usage as the
    hub reports it (this month by default), for the *Usage* panel."""

    @web.authenticated
    async def get(self) -> None:
        arguments = {k: self.get_query_argument(k, "") for k in self.request.query_arguments}
        try:
            answer = await self.usage.report(arguments)
        except ServiceError as error:
            self.refuse(error)
            return
        if answer.body is not None:
            self.reply(answer.body)
            return
        self.set_header("Content-Disposition", 'attachment; filename="usage.csv"')
        self.set_header("Cache-Control", "no-store")
        # APIHandler.finish sets JSON's content type unless told otherwise
        self.finish(answer.text, set_content_type=answer.content_type)


# (path below {base_url}continuum/, handler class); the auth test walks this table
ROUTES: list[tuple[str, type[ContinuumHandler]]] = [
    ("session", SessionHandler),
    ("clusters", ClustersHandler),
    ("clusters/options", ClusterOptionsHandler),
    ("clusters/scale", ClusterScaleHandler),
    ("clusters/adapt", ClusterAdaptHandler),
    ("clusters/stop", ClusterStopHandler),
    *workflow_handlers.ROUTES,
    *catalogue_handlers.ROUTES,
    ("usage", UsageHandler),
    *workshop_handlers.ROUTES,
]


def setup_handlers(web_app: web.Application, **managers: Any) -> None:
    """Register :data:`ROUTES` on the server's application.

    Parameters
    ----------
    web_app
        The Jupyter server's tornado application.
    **managers
        Passed to every handler's ``initialize`` (``lab``, ``job_info``, ``clusters``,
        ``workflows``, ``catalogue``, ``usage``, ``workshop``).
    """
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$",
        [(url_path_join(base_url, NAMESPACE, path), cls, managers) for path, cls in ROUTES],
    )
