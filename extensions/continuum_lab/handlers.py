"""HTTP routes of ``continuum_lab``: thin, authenticated handlers over the managers.

Every route lives below ``{base_url}continuum/``; every method requires the user's login
(``tests/lab/test_server_extension.py`` walks :data:`ROUTES` without credentials and
expects 403).

Longer than our ~400 lines on purpose: one small class per route (session, clusters, batch
runs, catalogue, usage, workshops), all in the one table that the authentication walk reads;
each class is a few lines over its manager, so splitting the file would only scatter the table.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .catalogue import CatalogueManager, usable_sites
from .clusters import ClusterManager, GatewayError
from .config import ContinuumLab
from .job import JobInfoManager
from .remote import ServiceError
from .usage import UsageManager
from .workflows import ESTIMATE_FIELDS, WorkflowsManager
from .workshop import WorkshopManager

NAMESPACE = "continuum"


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


class WorkflowsHandler(ContinuumHandler):
    """Base of the batch-run routes: :meth:`forward` answers a manager call or its refusal."""

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


class WorkflowOptionsHandler(WorkflowsHandler):
    """``GET /continuum/workflows/options``: sites, partitions, environments and limits."""

    @web.authenticated
    async def get(self) -> None:
        await self.forward(self.workflows.options)


class WorkflowEstimateHandler(WorkflowsHandler):
    """``GET /continuum/workflows/estimate?site=…&partition=…&cores=…``: when the dialog's
    resources would start, with their energy/CO2e bound (the spawn form's estimate)."""

    @web.authenticated
    async def get(self) -> None:
        query = {k: self.get_query_argument(k, "") for k in ESTIMATE_FIELDS}
        await self.forward(lambda: self.workflows.estimate(query))


class WorkflowParametersHandler(WorkflowsHandler):
    """``GET /continuum/workflows/parameters?path=``: the notebook's parameters cell."""

    @web.authenticated
    async def get(self) -> None:
        path = self.get_query_argument("path", "")
        await self.forward(lambda: self.workflows.parameters(self.contents_manager, path))


class WorkflowRunsHandler(WorkflowsHandler):
    """``GET /continuum/workflows/runs``: the user's runs; ``POST`` ``{"path", …}``: submit."""

    @web.authenticated
    async def get(self) -> None:
        self.polled()
        query = {k: self.get_query_argument(k, "") for k in ("state", "workflow")}

        async def listing() -> dict[str, Any]:
            runs = await self.workflows.list_runs(query)
            return {"runs": runs, "refresh_seconds": self.lab.workflows_refresh_seconds}

        await self.forward(listing)

    @web.authenticated
    async def post(self) -> None:
        await self.forward(
            lambda: self.workflows.submit(self.contents_manager, self.json_object()), status=201
        )


class WorkflowFilesHandler(WorkflowsHandler):
    """``GET /continuum/workflows/workflows``: the user's workflows; ``POST`` ``{"path"}``:
    submit the workflow file (YAML) with the notebooks its steps name."""

    @web.authenticated
    async def get(self) -> None:
        await self.forward(self.workflows.list_workflows)

    @web.authenticated
    async def post(self) -> None:
        await self.forward(
            lambda: self.workflows.submit_workflow(
                self.contents_manager, self.json_object().get("path")
            ),
            status=201,
        )


class WorkflowRunHandler(WorkflowsHandler):
    """``GET /continuum/workflows/run?id=``: one run with its members' progress."""

    @web.authenticated
    async def get(self) -> None:
        run_id = self.get_query_argument("id", "")
        await self.forward(lambda: self.workflows.run(run_id))


class WorkflowCancelHandler(WorkflowsHandler):
    """``POST /continuum/workflows/runs/cancel`` ``{"id"}``: cancel the run."""

    @web.authenticated
    async def post(self) -> None:
        await self.forward(lambda: self.workflows.cancel(self.json_object().get("id")))


class WorkflowRerunHandler(WorkflowsHandler):
    """``POST /continuum/workflows/runs/rerun`` ``{"id", "parameters"?}``: run it again."""

    @web.authenticated
    async def post(self) -> None:
        async def rerun() -> Any:
            body = self.json_object()
            return await self.workflows.rerun(body.get("id"), body.get("parameters"))

        await self.forward(rerun, status=201)


class WorkflowOpenHandler(WorkflowsHandler):
    """``POST /continuum/workflows/runs/open`` ``{"id", "member"?}``: save the executed
    notebook into ``continuum-runs/<id>/`` and answer ``{"path"}`` for Lab to open."""

    @web.authenticated
    async def post(self) -> None:
        async def save() -> dict[str, str]:
            body = self.json_object()
            cm = self.contents_manager
            return {
                "path": await self.workflows.save_output(cm, body.get("id"), body.get("member"))
            }

        await self.forward(save)


class WorkflowFileHandler(WorkflowsHandler):
    """``POST /continuum/workflows/file`` ``{"path", "workflow"}``: save a workflow file."""

    @web.authenticated
    async def post(self) -> None:
        await self.forward(
            lambda: self.workflows.save_workflow(self.contents_manager, self.json_object()),
            status=201,
        )


class WorkflowArchiveHandler(WorkflowsHandler):
    """``GET /continuum/workflows/runs/archive?id=``: the run folder as a tar.gz download
    (no credentials in it), streamed from the service as it comes."""

    @web.authenticated
    async def get(self) -> None:
        started = False

        def write(name: str, chunk: bytes) -> None:
            nonlocal started
            if not started:
                started = True
                self.set_header("Content-Type", "application/gzip")
                self.set_header("Content-Disposition", f'attachment; filename="{name}"')
                self.set_header("Cache-Control", "no-store")
            self.write(chunk)
            self.flush()

        try:
            await self.workflows.archive(self.get_query_argument("id", ""), write)
        except ServiceError as error:
            if started:  # half an archive was sent: end the connection, never a JSON tail
                self.log.warning("continuum_lab: archive interrupted: %s", error.message)
                self.request.connection.close()
                return
            self.refuse(error)
            return
        self.finish()


class WorkflowCredentialsHandler(WorkflowsHandler):
    """``GET /continuum/workflows/credentials``: the user's run credentials."""

    @web.authenticated
    async def get(self) -> None:
        await self.forward(self.workflows.credentials)


class WorkflowRevokeHandler(WorkflowsHandler):
    """``POST /continuum/workflows/credentials/revoke`` ``{"id"}``: revoke a run credential."""

    @web.authenticated
    async def post(self) -> None:
        await self.forward(lambda: self.workflows.revoke(self.json_object().get("id")))


class CatalogueSearchHandler(WorkflowsHandler):
    """``GET /continuum/catalogue/search?q=…&site=…&offset=…&limit=…&facets=1``: one page."""

    @web.authenticated
    async def get(self) -> None:
        arguments = {k: self.get_query_arguments(k) for k in self.request.query_arguments}
        await self.forward(lambda: self.catalogue.search(arguments))


class CatalogueEntryHandler(WorkflowsHandler):
    """``GET /continuum/catalogue/entry?id=…&site=…``: one entry, its code for ``site``."""

    @web.authenticated
    async def get(self) -> None:
        entry, site = self.get_query_argument("id", ""), self.get_query_argument("site", "")
        await self.forward(lambda: self.catalogue.entry(entry, site))


class CatalogueSourcesHandler(WorkflowsHandler):
    """``GET /continuum/catalogue/sources``: the sources and their health."""

    @web.authenticated
    async def get(self) -> None:
        await self.forward(self.catalogue.sources)


class CatalogueSitesHandler(WorkflowsHandler):
    """``GET /continuum/catalogue/sites``: the sites this user may start work on (from the
    batch-run options); ``known`` is false, with the reason, when they cannot be asked."""

    @web.authenticated
    async def get(self) -> None:
        try:
            body = {"sites": usable_sites(await self.workflows.options()), "known": True}
        except ServiceError as error:
            body = {"sites": [], "known": False, "message": error.message}
        self.reply(body)


class CatalogueAvailableHandler(WorkflowsHandler):
    """``POST /continuum/catalogue/make-available`` ``{"id", "site"}``: ask for a copy."""

    @web.authenticated
    async def post(self) -> None:
        async def ask() -> Any:
            body = self.json_object()
            return await self.catalogue.make_available(body.get("id"), body.get("site"))

        await self.forward(ask, status=202)


class CatalogueRequestHandler(WorkflowsHandler):
    """``GET /continuum/catalogue/request?id=``: a *make available* request's state."""

    @web.authenticated
    async def get(self) -> None:
        request_id = self.get_query_argument("id", "")
        await self.forward(lambda: self.catalogue.request_state(request_id))


class CatalogueQueryHandler(WorkflowsHandler):
    """``POST /continuum/catalogue/query`` ``{"source", "query"}``: a source's own query."""

    @web.authenticated
    async def post(self) -> None:
        async def run() -> Any:
            body = self.json_object()
            return await self.catalogue.query(body.get("source"), body.get("query"))

        await self.forward(run)


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


class WorkshopMessagesHandler(WorkflowsHandler):
    """``GET /continuum/workshop/messages?after=N``: instructors' messages of the user's
    running events newer than message ``N``, polled by every lab."""

    # a poll is no activity: a participant who only keeps the lab open shows as idle
    _track_activity = False

    @web.authenticated
    async def get(self) -> None:
        after = self.get_query_argument("after", "")
        await self.forward(lambda: self.workshop.messages(after))


class WorkshopEventsHandler(WorkflowsHandler):
    """``GET /continuum/workshop/events``: the events the user instructs, with their
    participants' states (empty for anyone else)."""

    _track_activity = False

    @web.authenticated
    async def get(self) -> None:
        await self.forward(self.workshop.events)


class WorkshopActionHandler(WorkflowsHandler):
    """``POST /continuum/workshop/act`` ``{"event", "action", "user"?, "text"?}``: start all,
    stop all, push the material, end, send a message, open a participant's server."""

    @web.authenticated
    async def post(self) -> None:
        await self.forward(lambda: self.workshop.act(self.json_object()))


# (path below {base_url}continuum/, handler class); the auth test walks this table
ROUTES: list[tuple[str, type[ContinuumHandler]]] = [
    ("session", SessionHandler),
    ("clusters", ClustersHandler),
    ("clusters/options", ClusterOptionsHandler),
    ("clusters/scale", ClusterScaleHandler),
    ("clusters/adapt", ClusterAdaptHandler),
    ("clusters/stop", ClusterStopHandler),
    ("workflows/options", WorkflowOptionsHandler),
    ("workflows/estimate", WorkflowEstimateHandler),
    ("workflows/parameters", WorkflowParametersHandler),
    ("workflows/runs", WorkflowRunsHandler),
    ("workflows/run", WorkflowRunHandler),
    ("workflows/workflows", WorkflowFilesHandler),
    ("workflows/runs/cancel", WorkflowCancelHandler),
    ("workflows/runs/rerun", WorkflowRerunHandler),
    ("workflows/runs/open", WorkflowOpenHandler),
    ("workflows/runs/archive", WorkflowArchiveHandler),
    ("workflows/file", WorkflowFileHandler),
    ("workflows/credentials", WorkflowCredentialsHandler),
    ("workflows/credentials/revoke", WorkflowRevokeHandler),
    ("catalogue/search", CatalogueSearchHandler),
    ("catalogue/entry", CatalogueEntryHandler),
    ("catalogue/sources", CatalogueSourcesHandler),
    ("catalogue/sites", CatalogueSitesHandler),
    ("catalogue/make-available", CatalogueAvailableHandler),
    ("catalogue/request", CatalogueRequestHandler),
    ("catalogue/query", CatalogueQueryHandler),
    ("usage", UsageHandler),
    ("workshop/messages", WorkshopMessagesHandler),
    ("workshop/events", WorkshopEventsHandler),
    ("workshop/act", WorkshopActionHandler),
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
