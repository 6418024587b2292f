"""The base classes of ``continuum_lab``'s handlers: the managers, JSON answers, refusals.

:class:`ContinuumHandler` hands every handler the managers (tornado passes them to
``initialize``); :class:`ServiceHandler` is the base of the routes that answer what a manager's
call to a hub service returns, or its refusal.  The routes themselves are in
:mod:`.handlers` (session, clusters, usage, and the whole table), :mod:`.workflow_handlers`,
:mod:`.catalogue_handlers` and :mod:`.workshop_handlers`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from .catalogue import CatalogueManager
from .clusters import ClusterManager, GatewayError
from .config import ContinuumLab
from .job import JobInfoManager
from .remote import ServiceError
from .usage import UsageManager
from .workflows import WorkflowsManager
from .workshop import WorkshopManager


class ContinuumHandler(APIHandler):
    """Base of the extension's handlers: gives them the managers.

    Subclasses stay thin (parse, call a manager, answer JSON) and decorate every HTTP method
    with ``@web.authenticated``.
    """

    def initialize(
        self,
        lab: ContinuumLab,
        job_info: JobInfoManager,
        clusters: ClusterManager,
        workflows: WorkflowsManager,
        catalogue: CatalogueManager,
        usage: UsageManager,
        workshop: WorkshopManager,
    ) -> None:
        """Receive the managers (tornado calls this with the route's keyword arguments)."""
        self.lab = lab
        self.job_info = job_info
        self.clusters = clusters
        self.workflows = workflows
        self.catalogue = catalogue
        self.usage = usage
        self.workshop = workshop

    def polled(self) -> None:
        """This request is a panel's periodic refresh: not the user's activity (else an open
        lab would never look idle to the instructor's view or the idle culler)."""
        self._track_activity = False

    def reply(self, body: Any, status: int = 200) -> None:
        """Answer JSON, never cached."""
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))

    def refuse(self, error: ServiceError) -> None:
        """Answer a failed request with its status and message."""
        self.log.info("continuum_lab: %s: %s %s", self.request.path, error.status, error.message)
        self.reply({"message": error.message}, status=error.status)

    def json_object(self) -> dict[str, Any]:
        """The request's JSON body, which must be an object (:class:`GatewayError` 400 if not)."""
        try:
            body = self.get_json_body() or {}
        except web.HTTPError:
            body = None
        if not isinstance(body, dict):
            raise GatewayError(400, "The request body must be a JSON object")
        return body


class ServiceHandler(ContinuumHandler):
    """Base of the routes over a hub service: :meth:`forward` answers a manager call or its
    refusal."""

    async def forward(self, call: Callable[[], Awaitable[Any]], status: int = 200) -> None:
        """Answer what ``call()`` returns as JSON (``status``), or the error it raises."""
        try:
            body = await call()
        except ServiceError as error:
            self.refuse(error)
            return
        if body is None:
            self.set_status(204)
            self.finish()
        else:
            self.reply(body, status=status)
